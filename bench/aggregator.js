'use strict';

/**
 * Session aggregator benchmark: the real aggregator app (in this process, real Redis, real Kafka) over a
 * pre-filled telemetry topic of Avro VehicleTelemetry readings with a known charging pattern. Throughput is
 * read from the consumer group's committed offsets (and the readings metric), polled every 200 ms; the
 * produced STARTED / ENDED sessions are checked against the pattern. See bench/README.md.
 */
const path = require('node:path');
const { randomUUID } = require('node:crypto');
const { setTimeout: sleep } = require('node:timers/promises');
const { Partitioners } = require('kafkajs');
const Redis = require('ioredis');
const { SchemaRegistry, SchemaType } = require('@kafkajs/confluent-schema-registry');
const { canonicalSchema, dlqTopic } = require('@ampflow/contracts');
const { createKafka } = require('@ampflow/kafka');
const { createMetricsRegistry } = require('@ampflow/observability');
const pino = require('pino');
const { startCpuSample } = require('./lib/cpu');
const { ensureBuild, ensureInfrastructure } = require('./lib/infra');
const { parseMetrics, sumOf, buckets } = require('./lib/prometheus');
const { formatTable, round } = require('./lib/stats');
const kb = require('./lib/kafka-bench');

const { ROOT, log } = kb;
const AGGREGATOR_DIST = path.join(ROOT, 'services', 'session-aggregator', 'dist');
const PARTITIONS = 6;
const READINGS_PER_VEHICLE = 20;
const READING_INTERVAL_MS = 5 * 60_000;
const POLL_INTERVAL_MS = 200;
const RUN_TIMEOUT_MS = 300_000;
const PREFILL_BATCH = 5_000;
const GOALS = { minReadingsPerSec: 10_000 };

/**
 * The charging pattern of every vehicle, one entry per reading (20): plugged idle, session 1 (start, 7
 * updates, stopped while plugged), unplugged, plugged idle, session 2 (start, 5 updates, fully charged),
 * unplugged. Per vehicle: 2 STARTED, 12 UPDATED, 2 ENDED (1 CHARGING_STOPPED, 1 FULLY_CHARGED).
 */
const PATTERN = [
  'idle-plugged',
  'charging',
  'charging',
  'charging',
  'charging',
  'charging',
  'charging',
  'charging',
  'charging',
  'stopped',
  'unplugged',
  'idle-plugged',
  'charging',
  'charging',
  'charging',
  'charging',
  'charging',
  'charging',
  'full',
  'unplugged',
];
const EXPECTED_PER_VEHICLE = {
  started: 2,
  updated: 12,
  ended: 2,
  endedByReason: { CHARGING_STOPPED: 1, FULLY_CHARGED: 1 },
};

const MAKES = [
  ['Tesla', 'Model Y', 75],
  ['Volkswagen', 'ID.4', 77],
  ['Hyundai', 'Ioniq 5', 72.6],
  ['Kia', 'EV6', 77.4],
  ['Polestar', '2', 78],
];

/** A vehicle's fixed attributes (provider alternates; ids are unique per run). */
function vehicleOf(index, runId) {
  const provider = index % 2 === 0 ? 'smartcar' : 'telematica';
  const providerVehicleId = `${runId}-v${index}`;
  const [make, model, capacity] = MAKES[index % MAKES.length];
  return {
    provider,
    providerVehicleId,
    vehicleId: `${provider}:${providerVehicleId}`,
    userId: `${provider}:${runId}-u${Math.floor(index / 2)}`,
    capacity,
    sourceEventType: provider === 'smartcar' ? 'VEHICLE_STATE' : 'vehicle.charging-status',
    vehicle: {
      make,
      model,
      year: 2020 + (index % 5),
      vin: `BENCH${String(index).padStart(12, '0')}`,
      nickname: null,
    },
    location: { latitude: 48 + (index % 1000) / 1000, longitude: 11 + (index % 997) / 1000 },
    baseTime: Date.now() - 2 * 86_400_000 + (index % 3_600) * 1_000,
    odometer: 10_000 + (index % 50_000),
  };
}

/** Reading `step` (0..19) of a vehicle: every VehicleTelemetry field present (null where unknown). */
function readingOf(v, step) {
  const phase = PATTERN[step];
  const occurredAt = v.baseTime + step * READING_INTERVAL_MS;
  // SOC: 30 % at plug-in, +4 per charging reading; session 2 continues up to 100 % at 'full'.
  const charging = phase === 'charging';
  const soc = phase === 'full' ? 100 : Math.min(99, 30 + step * 4);
  const plugged = phase !== 'unplugged';
  const power = charging ? 7.4 + (step % 3) * 1.8 : 0;
  const sessionStart = step < 11 ? 1 : 12;
  const energy =
    charging || phase === 'full' || phase === 'stopped' ? round((step - sessionStart) * 0.6, 2) : null;
  return {
    eventId: randomUUID(),
    provider: v.provider,
    vehicleId: v.vehicleId,
    providerVehicleId: v.providerVehicleId,
    userId: v.userId,
    occurredAt,
    receivedAt: occurredAt + 1_500,
    sourceEventType: v.sourceEventType,
    isCharging: charging,
    isPluggedIn: plugged,
    chargingState: charging ? 'CHARGING' : phase === 'full' ? 'FULLY_CHARGED' : 'NOT_CHARGING',
    stateOfChargePercent: soc,
    rangeKm: round(soc * 4.2, 1),
    chargePowerKw: plugged ? power : null,
    chargeVoltageV: charging ? 230 : null,
    chargeCurrentA: charging ? round((power * 1000) / 230 / 3, 1) : null,
    energyAddedKwh: energy,
    chargeLimitPercent: 100,
    targetSocPercent: 100,
    timeToCompleteMinutes: charging ? (100 - soc) * 3 : null,
    batteryCapacityKwh: step % 5 === 0 ? v.capacity : null,
    location: v.location,
    odometerKm: v.odometer,
    vehicle: step === 0 ? v.vehicle : null,
    triggers: charging ? ['CHARGE_STATE'] : [],
  };
}

/** Registers the telemetry schema, encodes every reading (Confluent wire format) and produces them in time order. */
async function prefill({ kafka, registryUrl, telemetryTopic, vehicles, runId }) {
  const registry = new SchemaRegistry({ host: registryUrl });
  const { id: schemaId } = await registry.register(
    { type: SchemaType.AVRO, schema: canonicalSchema('ev.vehicle-telemetry.v1') },
    { subject: `${telemetryTopic}-value` },
  );
  const fleet = Array.from({ length: vehicles }, (_, i) => vehicleOf(i, runId));
  const producer = kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
    idempotent: true,
    maxInFlightRequests: 1,
  });
  await producer.connect();
  const started = Date.now();
  let encodeMs = 0;
  let bytes = 0;
  let batch = [];
  const flush = async () => {
    if (batch.length === 0) return;
    await producer.send({ topic: telemetryTopic, acks: -1, messages: batch });
    batch = [];
  };
  try {
    // Step-major: every vehicle's reading k goes out before any reading k+1, and sends are sequential, so
    // each vehicle's readings are in time order on its partition.
    for (let step = 0; step < READINGS_PER_VEHICLE; step++) {
      for (const v of fleet) {
        const t = Date.now();
        const value = await registry.encode(schemaId, readingOf(v, step));
        encodeMs += Date.now() - t;
        bytes += value.length;
        batch.push({
          key: v.vehicleId,
          value,
          headers: { 'event-id': `${v.vehicleId}:${step}`, provider: v.provider },
        });
        if (batch.length >= PREFILL_BATCH) await flush();
      }
    }
    await flush();
  } finally {
    await producer.disconnect();
  }
  return {
    schemaId,
    readings: vehicles * READINGS_PER_VEHICLE,
    meanValueBytes: round(bytes / (vehicles * READINGS_PER_VEHICLE), 1),
    encodeSeconds: round(encodeMs / 1000, 2),
    seconds: round((Date.now() - started) / 1000, 2),
  };
}

async function committedCount(admin, groupId, topic) {
  const offsets = await admin.fetchOffsets({ groupId, topics: [topic] });
  return offsets
    .flatMap((t) => t.partitions)
    .reduce((sum, p) => sum + (Number(p.offset) > 0 ? Number(p.offset) : 0), 0);
}

async function metricSum(registry, name) {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  return values.reduce((s, v) => s + v.value, 0);
}

/** Redis histogram per operation: chunk count, mean, interpolated p50 / p99 (and per reading). */
function redisTimings(series, readings) {
  const name = 'session_aggregator_redis_duration_seconds';
  const out = {};
  for (const operation of ['load', 'save']) {
    const b = buckets(series, name, { operation });
    const count = sumOf(series, `${name}_count`, { operation });
    const sum = sumOf(series, `${name}_sum`, { operation });
    const readingsPerChunk = count > 0 ? readings / count : NaN;
    const ms = (s) => (s === undefined ? undefined : round(s * 1000, 3));
    const p50 = kb.interpolatedQuantile(b, 0.5);
    const p99 = kb.interpolatedQuantile(b, 0.99);
    out[operation] = {
      chunks: count,
      meanReadingsPerChunk: round(readingsPerChunk, 1),
      chunkMeanMs: count > 0 ? ms(sum / count) : undefined,
      chunkP50Ms: ms(p50),
      chunkP99Ms: ms(p99),
      perReadingMeanUs: count > 0 ? round((sum / readings) * 1e6, 2) : undefined,
      perReadingP50Us: p50 === undefined ? undefined : round((p50 / readingsPerChunk) * 1e6, 2),
      perReadingP99Us: p99 === undefined ? undefined : round((p99 / readingsPerChunk) * 1e6, 2),
      shareOfWall: undefined,
      totalSeconds: round(sum, 3),
      buckets: b.map((x) => ({ le: x.le === Infinity ? '+Inf' : x.le, count: x.count })),
    };
  }
  return out;
}

async function cleanRedis(url, namespace) {
  const redis = new Redis(url, { lazyConnect: true });
  await redis.connect();
  let deleted = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1_000);
      cursor = next;
      if (keys.length > 0) deleted += await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    await redis.quit();
  }
  return deleted;
}

function printReport(report) {
  const p = report.parameters;
  const r = report.result;
  log('');
  log(
    `${p.vehicles} vehicles x ${p.readingsPerVehicle} readings = ${p.readings} readings, ${p.partitions} ` +
      `partitions; ${report.machine.cpuCount} CPUs, node ${report.machine.nodeVersion}`,
  );
  const headers = ['measure', 'readings/s', 'window s', 'from'];
  const rows = [
    [
      'steady, committed offsets',
      r.committed.steadyPerSec,
      r.committed.steadySeconds,
      'first commit -> all committed',
    ],
    [
      'steady, readings metric',
      r.metric.steadyPerSec,
      r.metric.steadySeconds,
      'first counted -> all counted',
    ],
    ['total, committed offsets', r.committed.totalPerSec, r.committed.doneAtS, 'start() -> all committed'],
  ];
  process.stdout.write(`\n${formatTable(headers, rows)}\n\n`);
  const t = r.redis;
  const rh = [
    'Redis op',
    'chunks',
    'readings/chunk',
    'mean ms',
    'p50 ms',
    'p99 ms',
    'µs/reading mean',
    'p50',
    'p99',
  ];
  const rr = ['load', 'save'].map((op) => [
    op,
    t[op].chunks,
    t[op].meanReadingsPerChunk,
    t[op].chunkMeanMs,
    t[op].chunkP50Ms,
    t[op].chunkP99Ms,
    t[op].perReadingMeanUs,
    t[op].perReadingP50Us,
    t[op].perReadingP99Us,
  ]);
  process.stdout.write(`${formatTable(rh, rr)}\n\n`);
  log(
    'Redis: per chunk round trip from session_aggregator_redis_duration_seconds (quantiles interpolated in ' +
      'the buckets); per reading = chunk time / mean readings per chunk (an approximation: chunk sizes vary)',
  );
  log(
    `start() resolved at ${r.startResolvedAtS} s, first reading counted at ${r.metric.firstOutputAtS} s, all ` +
      `counted at ${r.metric.doneAtS} s, all committed at ${r.committed.doneAtS} s`,
  );
  log(
    `CPU cores: ${Object.entries(r.cpu.cores)
      .filter(([, v]) => v !== undefined)
      .map(([n, v]) => `${n} ${v}`)
      .join(', ')}; ` + `bench process ${r.cpuMicrosPerReading} µs CPU/reading`,
  );
  const s = r.sessions;
  log(
    `readings by outcome: ${JSON.stringify(r.readingsByOutcome)}; dead letters ${r.deadLetters}; session ` +
      `records on the sessions topic ${s.recordsOnTopic} (expected ${s.expected.records})`,
  );
  log(
    `sessions: STARTED ${s.started} (expected ${s.expected.started}), ENDED ${s.ended} (expected ` +
      `${s.expected.ended}) by reason ${JSON.stringify(s.endedByReason)}: ${s.verdict}`,
  );
  log(`Redis keys deleted at the end: ${r.redisKeysDeleted}`);
  const met = (ok) => (ok ? 'met' : 'NOT met');
  log('');
  log(
    `goal: >= ${GOALS.minReadingsPerSec} readings/s (steady, committed offsets): ${met(report.goals.readingsPerSec)}`,
  );
}

async function run(options) {
  const startedAt = new Date().toISOString();
  if (!options.skipBuild) ensureBuild(ROOT);
  const infra = ensureInfrastructure(ROOT);
  const brokers = kb.brokerList(infra);
  const registryUrl = kb.schemaRegistryUrl();
  log(`Kafka ${infra.kafkaBrokers}, Redis ${infra.redisUrl}, registry ${registryUrl} (${infra.source})`);
  const vehicles = options.aggregatorVehicles;
  const readings = vehicles * READINGS_PER_VEHICLE;
  const runId = `${startedAt.replace(/[^0-9]/g, '').slice(0, 14)}-${randomUUID().slice(0, 6)}`;
  const telemetryTopic = `bench.${runId}.vehicle-telemetry`;
  const sessionsTopic = `bench.${runId}.charging-sessions`;
  const namespace = `bench:${runId}:sessions`;
  const groupId = `bench.${runId}.aggregator`;
  const topics = [telemetryTopic, sessionsTopic, dlqTopic(telemetryTopic)];
  const subjects = [`${telemetryTopic}-value`, `${sessionsTopic}-value`];
  const silent = pino({ level: 'silent' });
  const admin = await kb.connectAdmin(brokers);
  const pids = kb.stackPids(infra);
  let redisKeysDeleted;
  try {
    await kb.createTopics(admin, [telemetryTopic], PARTITIONS);
    log(`pre-filling ${readings} readings (${vehicles} vehicles) on ${telemetryTopic}`);
    const fill = await prefill({
      kafka: createKafka({ brokers, clientId: 'bench-prefill', logger: silent }),
      registryUrl,
      telemetryTopic,
      vehicles,
      runId,
    });
    const onTopic = await kb.recordCount(admin, [telemetryTopic]);
    log(`pre-filled in ${fill.seconds} s (encoding ${fill.encodeSeconds} s); on the topic: ${onTopic}`);
    if (onTopic !== readings) throw new Error(`expected ${readings} readings on the topic, found ${onTopic}`);

    const { createAggregatorApp } = require(path.join(AGGREGATOR_DIST, 'app.js'));
    const { DEFAULT_REDUCER_SETTINGS } = require(path.join(AGGREGATOR_DIST, 'session-reducer.js'));
    const registry = createMetricsRegistry('session-aggregator', { defaultMetrics: false });
    const settings = {
      ...DEFAULT_REDUCER_SETTINGS,
      httpPort: 0,
      schemaRegistryUrl: registryUrl,
      shutdownDrainMs: 5_000,
      consumerGroupId: groupId,
      sessionsTopicPartitions: PARTITIONS,
      sweepIntervalMs: 3_600_000,
      stateTtlSeconds: 3_600,
      redisNamespace: namespace,
      telemetryTopic,
      sessionsTopic,
      sessionTimeoutMs: 10_000,
    };
    const app = createAggregatorApp({
      settings,
      kafka: createKafka({ brokers, clientId: 'bench-aggregator', logger: silent }),
      redis: new Redis(infra.redisUrl, { lazyConnect: true, enableAutoPipelining: true }),
      logger: silent,
      registry,
      onFatal: (error) => process.stderr.write(`aggregator reported itself stuck: ${error}\n`),
    });

    const t0 = process.hrtime.bigint();
    const since = () => Number(process.hrtime.bigint() - t0) / 1e6;
    const cpu = startCpuSample({ benchProcess: process.pid, ...pids });
    let startError;
    let startResolvedAtMs;
    const starting = app.start().then(
      () => {
        startResolvedAtMs = since();
      },
      (err) => {
        startError = err;
      },
    );
    const samples = [];
    let cpuUsage;
    try {
      for (;;) {
        const [committed, counted] = await Promise.all([
          committedCount(admin, groupId, telemetryTopic),
          metricSum(registry, 'session_aggregator_readings_total'),
        ]);
        const atMs = since();
        samples.push({ atMs: round(atMs, 1), committed, counted });
        if (committed >= readings) break;
        if (startError) throw new Error(`aggregator failed to start: ${startError.message}`);
        if (atMs > RUN_TIMEOUT_MS) throw new Error(`timed out: ${committed}/${readings} committed`);
        await sleep(POLL_INTERVAL_MS);
      }
      cpuUsage = cpu.stop();
    } finally {
      await starting;
    }
    const poll = (field) => {
      const first = samples.find((s) => s[field] > 0);
      const done = samples.find((s) => s[field] >= readings) ?? samples.at(-1);
      return kb.throughput(
        {
          first: first && { atMs: first.atMs, count: first[field] },
          done: { atMs: done.atMs, count: done[field] },
          timedOut: done[field] < readings,
        },
        readings,
      );
    };
    const committed = poll('committed');
    const metric = poll('counted');

    // Outputs are acknowledged before the offsets are committed, so the sessions topic is complete now.
    const recordsOnTopic = await kb.recordCount(admin, [sessionsTopic]);
    const series = parseMetrics(await registry.metrics());
    const readingsByOutcome = {};
    for (const s of series.filter((x) => x.name === 'session_aggregator_readings_total')) {
      readingsByOutcome[s.labels.outcome] = s.value;
    }
    const endedByReason = {};
    for (const s of series.filter((x) => x.name === 'session_aggregator_sessions_ended_total')) {
      endedByReason[s.labels.reason] = s.value;
    }
    const started = sumOf(series, 'session_aggregator_sessions_started_total');
    const ended = sumOf(series, 'session_aggregator_sessions_ended_total');
    const expected = {
      started: vehicles * EXPECTED_PER_VEHICLE.started,
      ended: vehicles * EXPECTED_PER_VEHICLE.ended,
      endedByReason: Object.fromEntries(
        Object.entries(EXPECTED_PER_VEHICLE.endedByReason).map(([k, n]) => [k, n * vehicles]),
      ),
      records:
        vehicles * (EXPECTED_PER_VEHICLE.started + EXPECTED_PER_VEHICLE.updated + EXPECTED_PER_VEHICLE.ended),
    };
    const consistent =
      started === expected.started &&
      ended === expected.ended &&
      Object.entries(expected.endedByReason).every(([k, n]) => endedByReason[k] === n) &&
      recordsOnTopic >= expected.records;
    const redis = redisTimings(series, readings);
    const wall = committed.doneAtS;
    for (const op of ['load', 'save']) redis[op].shareOfWall = round(redis[op].totalSeconds / wall, 3);

    await app.stop().catch((err) => log(`aggregator stop failed: ${err.message}`));
    redisKeysDeleted = await cleanRedis(infra.redisUrl, namespace);

    const result = {
      committed,
      metric,
      startResolvedAtS: startResolvedAtMs === undefined ? undefined : round(startResolvedAtMs / 1000, 3),
      cpu: cpuUsage,
      cpuMicrosPerReading: round(((cpuUsage.cores.benchProcess * cpuUsage.wallSeconds) / readings) * 1e6, 1),
      readingsByOutcome,
      deadLetters: sumOf(series, 'session_aggregator_dead_letters_total'),
      redis,
      sessions: {
        started,
        ended,
        endedByReason,
        recordsOnTopic,
        expected,
        verdict: consistent
          ? 'OK (matches the generated pattern)'
          : 'MISMATCH with the generated pattern (records on topic may exceed on redelivery)',
      },
      redisKeysDeleted,
      samples,
    };
    const report = {
      benchmark: 'aggregator',
      startedAt,
      finishedAt: new Date().toISOString(),
      parameters: {
        vehicles,
        readingsPerVehicle: READINGS_PER_VEHICLE,
        readings,
        partitions: PARTITIONS,
        telemetryTopic,
        sessionsTopic,
        redisNamespace: namespace,
        consumerGroupId: groupId,
        pattern: PATTERN,
        readingIntervalMs: READING_INTERVAL_MS,
        expectedPerVehicle: EXPECTED_PER_VEHICLE,
        pollIntervalMs: POLL_INTERVAL_MS,
        measurement:
          'committed offsets of the group (admin.fetchOffsets, autocommit every 1 s) and ' +
          'session_aggregator_readings_total, polled every 200 ms; steady = first poll with progress to the ' +
          'poll with all readings; total = from start() (includes Redis connect, topic creation, schema ' +
          'registration, group join)',
        prefillResult: fill,
        settings: { ...settings, schemaRegistryUrl: registryUrl },
        redisClient: { lazyConnect: true, enableAutoPipelining: true },
        cpu: 'benchProcess = this node process (the app plus the 200 ms poll), from /proc',
        infrastructure: { ...infra, schemaRegistryUrl: registryUrl },
        goals: GOALS,
      },
      machine: kb.machineInfo(),
      result,
      goals: { readingsPerSec: committed.steadyPerSec >= GOALS.minReadingsPerSec },
    };
    printReport(report);
    const file = kb.writeResults('aggregator', report);
    log(`results: ${path.relative(ROOT, file)} (and bench/results/aggregator-latest.json)`);
    return report;
  } finally {
    if (redisKeysDeleted === undefined) {
      await cleanRedis(infra.redisUrl, namespace).catch((err) => log(`Redis cleanup failed: ${err.message}`));
    }
    await kb.deleteTopics(admin, topics);
    await kb.deleteSubjects(registryUrl, subjects);
    await admin.disconnect().catch(() => {});
  }
}

module.exports = { run };
