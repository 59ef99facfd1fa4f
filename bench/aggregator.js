'use strict';

/**
 * Session aggregator benchmark: the real aggregator (services/session-aggregator/dist/main.js, a child
 * process with real Redis and Kafka) over Avro VehicleTelemetry readings with a known charging pattern,
 * pre-filled on the run's own input topic (`bench.<runId>.ev.vehicle-telemetry.v1`: the aggregator gets
 * KAFKA_TOPIC_PREFIX, so it reads and writes only the run's topics). Throughput is read from its consumer group's committed offsets, polled
 * every 200 ms; the sessions it counted are checked against the pattern. See bench/README.md.
 */
const path = require('node:path');
const { randomUUID } = require('node:crypto');
const { Partitioners } = require('kafkajs');
const { SchemaRegistry, SchemaType } = require('@kafkajs/confluent-schema-registry');
const { Topics, canonicalSchema } = require('@ampflow/contracts');
const { measureConsumerRun, POLL_INTERVAL_MS } = require('./lib/consumer-run');
const { prepare, stackPids } = require('./lib/infra');
const kafka = require('./lib/kafka');
const { buckets, scrapeMetrics, sumOf } = require('./lib/prometheus');
const { stopTarget, withChildren } = require('./lib/processes');
const { deleteRedisNamespace } = require('./lib/redis');
const report = require('./lib/report');
const { interpolatedQuantile, round } = require('./lib/stats');
const { assertOwn, runPrefix, runTopics } = require('./lib/topics');

const { ROOT, log } = report;
const AGGREGATOR_MAIN = path.join(ROOT, 'services', 'session-aggregator', 'dist', 'main.js');
const PARTITIONS = 6;
const READINGS_PER_VEHICLE = 20;
const READING_INTERVAL_MS = 5 * 60_000;
const PREFILL_BATCH = 5_000;
const GOALS = { minReadingsPerSec: 10_000 };
/** The sweeper never fires during a run; states outlive the 6 h inactivity timeout, as the config requires. */
const AGGREGATOR_ENV = {
  LOG_LEVEL: 'warn',
  SHUTDOWN_DRAIN_MS: '5000',
  SESSIONS_TOPIC_PARTITIONS: '6',
  SESSION_SWEEP_INTERVAL_MS: '3600000',
  VEHICLE_STATE_TTL_SECONDS: String(7 * 3600),
};

/**
 * The charging pattern of every vehicle, one entry per reading (20): plugged idle, session 1 (start, 7
 * updates, stopped while plugged), unplugged, plugged idle, session 2 (start, 5 updates, fully charged),
 * unplugged. Per vehicle: 2 STARTED, 12 UPDATED, 2 ENDED (1 CHARGING_STOPPED, 1 FULLY_CHARGED).
 */
const PATTERN = [
  ...['idle-plugged', ...Array(8).fill('charging'), 'stopped', 'unplugged'],
  ...['idle-plugged', ...Array(6).fill('charging'), 'full', 'unplugged'],
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

/**
 * Registers the telemetry schema under the run's topic's subject, encodes every reading (Confluent wire
 * format) and produces them in time order to the run's telemetry topic.
 */
async function prefill({ brokers, registryUrl, vehicles, runId, topic }) {
  const registry = new SchemaRegistry({ host: registryUrl });
  const { id: schemaId } = await registry.register(
    { type: SchemaType.AVRO, schema: canonicalSchema(Topics.vehicleTelemetry) },
    { subject: `${topic}-value` },
  );
  const fleet = Array.from({ length: vehicles }, (_, i) => vehicleOf(i, runId));
  const producer = kafka.quietKafka(brokers, 'bench-prefill').producer({
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
    await producer.send({ topic, acks: -1, messages: batch });
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
    const p50 = interpolatedQuantile(b, 0.5);
    const p99 = interpolatedQuantile(b, 0.99);
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

function printReport(r) {
  const p = r.parameters;
  const x = r.result;
  log('');
  log(
    `${p.vehicles} vehicles x ${p.readingsPerVehicle} readings = ${p.readings} readings (${p.range} in the ` +
      `range); ${r.machine.cpuCount} CPUs, node ${r.machine.nodeVersion}`,
  );
  report.printTable(
    ['measure', 'readings/s', 'window s', 'from', 'CPU µs/reading', 'peak RSS MiB'],
    [
      [
        'steady, committed offsets',
        x.steadyPerSec,
        x.steadySeconds,
        'first commit -> all committed',
        x.targetCpuMicrosPerRecord,
        x.targetPeakRssMiB,
      ],
      ['total, committed offsets', x.totalPerSec, x.doneAtS, 'process spawned -> all committed', '', ''],
    ],
  );
  log('CPU µs/reading: the aggregator process over its whole run; peak RSS: its VmHWM at the end of the run');
  const t = x.redis;
  report.printTable(
    ['Redis op', 'chunks', 'readings/chunk', 'mean ms', 'p50 ms', 'p99 ms', 'µs/reading mean', 'p50', 'p99'],
    ['load', 'save'].map((op) => [
      op,
      t[op].chunks,
      t[op].meanReadingsPerChunk,
      t[op].chunkMeanMs,
      t[op].chunkP50Ms,
      t[op].chunkP99Ms,
      t[op].perReadingMeanUs,
      t[op].perReadingP50Us,
      t[op].perReadingP99Us,
    ]),
  );
  log(
    'Redis: per chunk round trip from session_aggregator_redis_duration_seconds (quantiles interpolated in ' +
      'the buckets); per reading = chunk time / mean readings per chunk (an approximation: chunk sizes vary)',
  );
  log(
    `first commit at ${x.firstOutputAtS} s, all committed at ${x.doneAtS} s${x.timedOut ? ' TIMED OUT' : ''}; ` +
      `exit ${x.exit.code ?? x.exit.signal}; CPU cores: ${report.formatCores(x.cpu.cores)}; target ` +
      `${x.targetCpuMicrosPerRecord} µs CPU/reading`,
  );
  const s = x.sessions;
  log(
    `readings by outcome: ${JSON.stringify(x.readingsByOutcome)}; dead letters ${x.deadLetters}; session ` +
      `records on the sessions topic ${s.recordsOnTopic} (expected ${s.expected.records})`,
  );
  log(
    `sessions: STARTED ${s.started} (expected ${s.expected.started}), ENDED ${s.ended} (expected ` +
      `${s.expected.ended}) by reason ${JSON.stringify(s.endedByReason)}: ${s.verdict}`,
  );
  log(`Redis keys deleted at the end: ${x.redisKeysDeleted}`);
  log('');
  log(
    `goal: >= ${GOALS.minReadingsPerSec} readings/s (steady, committed offsets): ${report.met(r.goals.readingsPerSec)}`,
  );
}

/** Counted by the process vs the pattern; exact, or a lower bound if anything else wrote to the run's topic. */
function checkSessions(metrics, vehicles, range, recordsOnTopic, othersWriting) {
  const byLabel = (name, label) =>
    Object.fromEntries(metrics.filter((m) => m.name === name).map((m) => [m.labels[label], m.value]));
  const readingsByOutcome = byLabel('session_aggregator_readings_total', 'outcome');
  const endedByReason = byLabel('session_aggregator_sessions_ended_total', 'reason');
  const per = EXPECTED_PER_VEHICLE;
  const expected = {
    started: vehicles * per.started,
    ended: vehicles * per.ended,
    endedByReason: Object.fromEntries(Object.entries(per.endedByReason).map(([k, n]) => [k, n * vehicles])),
    records: vehicles * (per.started + per.updated + per.ended),
  };
  const started = sumOf(metrics, 'session_aggregator_sessions_started_total');
  const ended = sumOf(metrics, 'session_aggregator_sessions_ended_total');
  const exact = othersWriting === 0;
  const same = (actual, wanted) => (exact ? actual === wanted : actual >= wanted);
  const consistent =
    same(started, expected.started) &&
    same(ended, expected.ended) &&
    Object.entries(expected.endedByReason).every(([k, n]) => same(endedByReason[k] ?? 0, n)) &&
    recordsOnTopic >= expected.records &&
    same(readingsByOutcome.applied ?? 0, range);
  let verdict = consistent ? 'OK (matches the generated pattern)' : 'MISMATCH with the generated pattern';
  if (!exact) verdict += ` (others wrote ${othersWriting} readings meanwhile: checked as lower bounds)`;
  return {
    readingsByOutcome,
    sessions: { started, ended, endedByReason, recordsOnTopic, expected, verdict },
  };
}

async function run(options) {
  const startedAt = new Date().toISOString();
  const infra = prepare(options);
  const vehicles = options.aggregatorVehicles;
  const readings = vehicles * READINGS_PER_VEHICLE;
  const runId = report.runIdOf(startedAt);
  const topics = runTopics(runPrefix(runId));
  const telemetryTopic = topics.telemetry;
  const sessionsTopic = topics.sessions;
  const groupId = `${topics.prefix}aggregator`;
  const namespace = `bench:${runId}:sessions`;
  const changelogTopic = `${groupId}-state-changelog`;
  assertOwn(topics.prefix, [telemetryTopic, sessionsTopic, topics.telemetryDlq, groupId, changelogTopic]);
  const admin = await kafka.connectAdmin(infra.brokers);
  let redisKeysDeleted;
  try {
    // The run's own topics, created before anything starts (the aggregator would create the sessions and
    // dead-letter topics with the same partition counts; it creates its compacted changelog topic itself).
    log(`run topics: ${topics.prefix}* (KAFKA_TOPIC_PREFIX of the aggregator)`);
    await kafka.createTopics(admin, [telemetryTopic, sessionsTopic], PARTITIONS);
    await kafka.createTopics(admin, [topics.telemetryDlq], 1);
    const start = await kafka.endOffsets(admin, [telemetryTopic]);
    log(`pre-filling ${readings} readings (${vehicles} vehicles) on ${telemetryTopic}`);
    const fill = await prefill({
      brokers: infra.brokers,
      registryUrl: infra.schemaRegistryUrl,
      vehicles,
      runId,
      topic: telemetryTopic,
    });
    const end = await kafka.endOffsets(admin, [telemetryTopic]);
    const range = kafka.rangeSize(start, end);
    log(`pre-filled in ${fill.seconds} s (encoding ${fill.encodeSeconds} s); the topic gained ${range}`);
    if (range < readings) throw new Error(`expected ${readings} more readings on the topic, found ${range}`);
    const endCount = await kafka.recordCount(admin, [telemetryTopic]);
    const sessionsBefore = await kafka.recordCount(admin, [sessionsTopic]);

    const env = {
      ...AGGREGATOR_ENV,
      KAFKA_BROKERS: infra.kafkaBrokers,
      REDIS_URL: infra.redisUrl,
      SCHEMA_REGISTRY_URL: infra.schemaRegistryUrl,
      KAFKA_TOPIC_PREFIX: topics.prefix,
      AGGREGATOR_GROUP_ID: groupId,
      AGGREGATOR_REDIS_NAMESPACE: namespace,
      AGGREGATOR_CHANGELOG_TOPIC: changelogTopic,
    };
    const { result, metrics } = await withChildren(async (children) => {
      const measured = await measureConsumerRun({
        name: 'session-aggregator',
        script: AGGREGATOR_MAIN,
        env,
        groupId,
        start,
        end,
        admin,
        pids: stackPids(infra),
        children,
      });
      const scraped = await scrapeMetrics(`${measured.target.baseUrl}/metrics`);
      measured.result.exit = await stopTarget(measured.target.handle);
      return { result: measured.result, metrics: scraped };
    });
    // Outputs are acknowledged before the offsets are committed, so the sessions topic is complete now.
    const recordsOnTopic = (await kafka.settledRecordCount(admin, [sessionsTopic])).count - sessionsBefore;
    const othersWriting = (await kafka.recordCount(admin, [telemetryTopic])) - endCount + range - readings;
    Object.assign(result, checkSessions(metrics, vehicles, range, recordsOnTopic, othersWriting));
    result.deadLetters = sumOf(metrics, 'session_aggregator_dead_letters_total');
    result.redis = redisTimings(metrics, range);
    for (const op of ['load', 'save']) {
      result.redis[op].shareOfWall = round(result.redis[op].totalSeconds / result.doneAtS, 3);
    }
    redisKeysDeleted = await deleteRedisNamespace(infra.redisUrl, namespace);
    result.redisKeysDeleted = redisKeysDeleted;

    const r = {
      benchmark: 'aggregator',
      startedAt,
      finishedAt: new Date().toISOString(),
      parameters: {
        quick: options.quick,
        vehicles,
        readingsPerVehicle: READINGS_PER_VEHICLE,
        readings,
        range,
        partitions: PARTITIONS,
        topicPrefix: topics.prefix,
        telemetryTopic,
        sessionsTopic,
        startOffsets: start,
        endOffsets: end,
        pattern: PATTERN,
        readingIntervalMs: READING_INTERVAL_MS,
        expectedPerVehicle: EXPECTED_PER_VEHICLE,
        pollIntervalMs: POLL_INTERVAL_MS,
        method: 'bench/README.md (aggregator) at machine.gitCommit',
        prefillResult: fill,
        aggregatorEnv: env,
        infrastructure: infra,
        goals: GOALS,
      },
      machine: report.machineInfo(),
      result,
      goals: { readingsPerSec: result.steadyPerSec >= GOALS.minReadingsPerSec },
    };
    printReport(r);
    report.writeResults('aggregator', r);
    return r;
  } finally {
    if (redisKeysDeleted === undefined) {
      await deleteRedisNamespace(infra.redisUrl, namespace).catch((err) =>
        log(`Redis cleanup failed: ${err.message}`),
      );
    }
    await kafka.deleteRunResources(admin, topics.prefix, { registryUrl: infra.schemaRegistryUrl });
    await admin.disconnect().catch(() => {});
  }
}

module.exports = { run };
