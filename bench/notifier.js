'use strict';

/**
 * Notifier benchmark: the real notifier (services/notifier/dist/main.js, a child process with real Kafka,
 * registry and Redis) delivering `vehicle.telemetry` webhooks to 10 loopback sinks (targets/webhook-sinks.js,
 * one forked child), side by side with targets/plain-notify-forward.js (kafkajs + undici POST, same
 * per-endpoint concurrency, no signing/retries/durability) on the same records. See bench/README.md.
 */
const fs = require('node:fs');
const path = require('node:path');
const { randomUUID } = require('node:crypto');
const { setTimeout: sleep } = require('node:timers/promises');
const { Partitioners } = require('kafkajs');
const { SchemaRegistry, SchemaType } = require('@kafkajs/confluent-schema-registry');
const { Topics, canonicalSchema } = require('@ampflow/contracts');
const { processMemoryMiB, startCpuSample } = require('./lib/cpu');
const { prepare, stackPids } = require('./lib/infra');
const kafka = require('./lib/kafka');
const { RESULTS_DIR } = require('./lib/log');
const { NOTIFIER_MAIN, adminToken, notifierEnv, registerEndpoint } = require('./lib/notifier-service');
const { deleteRedisNamespace } = require('./lib/redis');
const { isRunning, startTarget, stopTarget, waitForHttpOk, withChildren } = require('./lib/processes');
const { scrapeMetrics } = require('./lib/prometheus');
const report = require('./lib/report');
const { startSinks } = require('./lib/sinks');
const { percentile, ratio, round } = require('./lib/stats');
const { assertOwn, runPrefix, runTopics } = require('./lib/topics');

const { log } = report;
const PLAIN_FORWARD = path.join(__dirname, 'targets', 'plain-notify-forward.js');
const PLAIN_FORWARD_PLATFORMATIC = path.join(__dirname, 'targets', 'plain-notify-forward-platformatic.js');
const PROFILES_DIR = path.join(RESULTS_DIR, 'profiles');
const PARTITIONS = 6;
const ENDPOINTS = 10;
const ENDPOINT_CONCURRENCY = 10;
const VEHICLES = 1_000;
const PREFILL_BATCH = 5_000;
const READY_TIMEOUT_MS = 90_000;
const GOALS = { minDeliveriesPerSec: 3_000, minRatio: 0.5 };

/** A telemetry reading of vehicle `v` (plugged in, idle: one `vehicle.telemetry` event, no session). */
function readingOf(runId, v, seq, occurredAt) {
  const provider = v % 2 === 0 ? 'smartcar' : 'telematica';
  const providerVehicleId = `${runId}-v${v}`;
  return {
    eventId: randomUUID(),
    provider,
    vehicleId: `${provider}:${providerVehicleId}`,
    providerVehicleId,
    userId: `${provider}:${runId}-u${v}`,
    occurredAt,
    receivedAt: occurredAt,
    sourceEventType: provider === 'smartcar' ? 'VEHICLE_STATE' : 'vehicle.soc',
    isCharging: false,
    isPluggedIn: true,
    chargingState: 'NOT_CHARGING',
    stateOfChargePercent: 40 + (seq % 50),
    rangeKm: 200,
    chargePowerKw: 0,
    chargeVoltageV: null,
    chargeCurrentA: null,
    energyAddedKwh: null,
    chargeLimitPercent: 100,
    targetSocPercent: 100,
    timeToCompleteMinutes: null,
    batteryCapacityKwh: 75,
    location: { latitude: 48 + (v % 1000) / 1000, longitude: 11 + (v % 997) / 1000 },
    odometerKm: 10_000 + v,
    vehicle: seq === 0 ? { make: 'Tesla', model: 'Model Y', year: 2023, vin: null, nickname: null } : null,
    triggers: [],
  };
}

/** Registers the telemetry schema under the run's subject; returns an encoder and a producer to send with. */
async function telemetryWriter({ brokers, registryUrl, topic, runId }) {
  const registry = new SchemaRegistry({ host: registryUrl });
  const { id: schemaId } = await registry.register(
    { type: SchemaType.AVRO, schema: canonicalSchema(Topics.vehicleTelemetry) },
    { subject: `${topic}-value` },
  );
  const producer = kafka.quietKafka(brokers, 'bench-notifier-prefill').producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
    idempotent: true,
    maxInFlightRequests: 1,
  });
  await producer.connect();
  let seq = 0;
  const message = async (occurredAt) => {
    const v = seq % VEHICLES;
    const reading = readingOf(runId, v, Math.floor(seq / VEHICLES), occurredAt);
    seq += 1;
    return {
      key: reading.vehicleId,
      value: await registry.encode(schemaId, reading),
      headers: { 'event-id': reading.eventId, provider: reading.provider },
    };
  };
  return {
    schemaId,
    async prefill(count) {
      const started = Date.now();
      let batch = [];
      for (let i = 0; i < count; i++) {
        batch.push(await message(Date.now() - 2 * 86_400_000 + i));
        if (batch.length >= PREFILL_BATCH) {
          await producer.send({ topic, acks: -1, messages: batch });
          batch = [];
        }
      }
      if (batch.length > 0) await producer.send({ topic, acks: -1, messages: batch });
      return { records: count, seconds: round((Date.now() - started) / 1000, 2) };
    },
    /** `rate` records/s for `seconds`, in ticks of 20 ms; occurredAt = the time of the send. */
    async paced(rate, seconds) {
      const tickMs = 20;
      const ticks = Math.round((seconds * 1000) / tickMs);
      const t0 = Date.now();
      let sent = 0;
      let late = 0;
      for (let k = 0; k < ticks; k++) {
        const due = t0 + k * tickMs;
        const wait = due - Date.now();
        if (wait > 0) await sleep(wait);
        else if (wait < -tickMs) late += 1;
        const target = Math.round(((k + 1) * tickMs * rate) / 1000);
        const batch = [];
        const now = Date.now();
        while (sent + batch.length < target) batch.push(await message(now));
        if (batch.length > 0) await producer.send({ topic, acks: -1, messages: batch });
        sent += batch.length;
      }
      return { records: sent, seconds: round((Date.now() - t0) / 1000, 2), lateTicks: late };
    },
    disconnect: () => producer.disconnect(),
  };
}

/**
 * Polls the sinks of `mode` every 200 ms until `expected` deliveries, a dead target, or no progress for 30 s
 * (120 s before the first delivery: startup, group join).
 */
async function waitForDeliveries(sinks, mode, expected, handle) {
  let last = (await sinks.request('report', { mode, light: true })).deliveries;
  let lastChange = Date.now() + 90_000;
  for (;;) {
    const r = await sinks.request('report', { mode, light: true });
    if (r.deliveries >= expected) return { ...r, complete: true };
    if (r.deliveries !== last) {
      last = r.deliveries;
      lastChange = Date.now();
    }
    if (handle && !isRunning(handle)) {
      throw new Error(`${handle.name} exited: ${handle.output.split('\n').slice(-8).join('\n')}`);
    }
    if (Date.now() - lastChange > 30_000) {
      log(`${mode}: no delivery for 30 s at ${r.deliveries} of ${expected}; giving up`);
      return { ...r, complete: false };
    }
    await sleep(200);
  }
}

/** Deliveries/s from the first to the last delivery seen by the sinks. */
function rateOf(r) {
  const seconds = (r.lastAt - r.firstAt) / 1000;
  return {
    deliveries: r.deliveries,
    seconds: round(seconds, 3),
    perSec: round((r.deliveries - 1) / seconds, 0),
  };
}

/** Exactly-once accounting: every record's id at every endpoint, once. */
function accounting(r, records) {
  const missing = r.distinctPerEndpoint.reduce((sum, n) => sum + Math.max(0, records - n), 0);
  const unexpected = r.distinctPerEndpoint.reduce((sum, n) => sum + Math.max(0, n - records), 0);
  return {
    expected: records * ENDPOINTS,
    received: r.deliveries,
    duplicates: r.duplicates,
    missing,
    unexpectedIds: unexpected,
    withoutId: r.missingId,
    exact: missing === 0 && r.duplicates === 0 && unexpected === 0 && r.missingId === 0,
  };
}

function latencyOf(values) {
  const sorted = Float64Array.from(values).sort();
  return {
    samples: sorted.length,
    p50Ms: percentile(sorted, 50),
    p90Ms: percentile(sorted, 90),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted.length > 0 ? sorted[sorted.length - 1] : NaN,
  };
}

function printReport(r) {
  const p = r.parameters;
  const x = r.result;
  log('');
  log(
    `${p.records} telemetry records pre-filled x ${ENDPOINTS} endpoints = ${p.records * ENDPOINTS} deliveries; ` +
      `latency phase ${p.latencyRate} records/s x ${p.latencySeconds} s; ${r.machine.cpuCount} CPUs, node ` +
      `${r.machine.nodeVersion}, load average at start ${r.machine.loadAverageAtStart.join(' ')}`,
  );
  report.printTable(
    [
      'target',
      'deliveries/s',
      'window s',
      'deliveries',
      'duplicates',
      'missing',
      'target cores',
      'sink cores',
      'CPU µs/delivery',
      'peak RSS MiB',
      'vs kafkajs plain',
      'vs platformatic plain',
    ],
    [
      [
        'notifier',
        `${x.notifier.throughput.perSec}${x.notifier.throughput.stalled ? ' STALLED' : ''}`,
        x.notifier.throughput.seconds,
        x.notifier.throughput.deliveries,
        x.notifier.accounting.duplicates,
        x.notifier.accounting.missing,
        x.notifier.cpu.cores.target,
        x.notifier.cpu.cores.sinks,
        x.notifier.cpuMicrosPerDelivery,
        x.notifier.peakRssMiB,
        x.ratio,
        x.ratioPlatformatic,
      ],
      ...[
        ['plain-notify-forward (kafkajs)', x.plain],
        ['plain-notify-forward-platformatic', x.plainPlatformatic],
      ].map(([label, y]) => [
        label,
        y.throughput.perSec,
        y.throughput.seconds,
        y.throughput.deliveries,
        y.accounting.duplicates,
        y.accounting.missing,
        y.cpu.cores.target,
        y.cpu.cores.sinks,
        y.cpuMicrosPerDelivery,
        y.peakRssMiB,
        ratio(y.throughput.perSec, x.plain.throughput.perSec),
        ratio(y.throughput.perSec, x.plainPlatformatic.throughput.perSec),
      ]),
    ],
  );
  log(`to ${ENDPOINTS} local endpoints; peak RSS: VmHWM of the target process before it was stopped`);
  log(
    'deliveries/s: first to last delivery at the sinks (backlog of pre-filled records); accounting over all',
  );
  log(
    `records (pre-filled + latency phase): notifier ${x.notifier.accounting.verdict}; plain kafkajs ${x.plain.accounting.verdict}; plain platformatic ${x.plainPlatformatic.accounting.verdict}`,
  );
  const l = x.notifier.latency;
  report.printTable(
    ['notifier latency (record produced -> delivered)', 'samples', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'],
    [
      [
        `${p.latencyRate} records/s = ${p.latencyRate * ENDPOINTS} deliveries/s`,
        l.samples,
        l.p50Ms,
        l.p90Ms,
        l.p99Ms,
        l.maxMs,
      ],
    ],
  );
  log(
    `signatures verified (every 100th notifier delivery, svix Webhook): ${x.notifier.signatures.verified} ok, ` +
      `${x.notifier.signatures.failed} failed${x.notifier.signatures.errors.length ? ` ${JSON.stringify(x.notifier.signatures.errors)}` : ''}`,
  );
  log(
    `notifier CPU cores: ${report.formatCores(x.notifier.cpu.cores)}; ${x.notifier.cpuMicrosPerDelivery} µs CPU/delivery`,
  );
  log(
    `plain kafkajs CPU cores: ${report.formatCores(x.plain.cpu.cores)}; ${x.plain.cpuMicrosPerDelivery} µs CPU/delivery`,
  );
  log(
    `plain platformatic CPU cores: ${report.formatCores(x.plainPlatformatic.cpu.cores)}; ${x.plainPlatformatic.cpuMicrosPerDelivery} µs CPU/delivery`,
  );
  if (x.notifier.profile) log(`profile: ${x.notifier.profile}`);
  log('');
  log(`goal: >= ${GOALS.minDeliveriesPerSec} deliveries/s: ${report.met(r.goals.deliveriesPerSec)}`);
  log(`goal: notifier/plain kafkajs >= ${GOALS.minRatio} (${x.ratio}): ${report.met(r.goals.ratio)}`);
  log(`notifier/plain @platformatic/kafka: ${x.ratioPlatformatic}`);
  log(`goal: every delivery exactly once: ${report.met(r.goals.exactlyOnce)}`);
}

async function run(options) {
  const startedAt = new Date().toISOString();
  const infra = prepare(options);
  const runId = report.runIdOf(startedAt);
  const topics = runTopics(runPrefix(runId));
  const topic = topics.telemetry;
  const groupId = `${topics.prefix}notifier`;
  const plainGroupId = `${topics.prefix}plain-notify-forward`;
  const namespace = `bench:${runId}:notifier`;
  assertOwn(topics.prefix, [topic, groupId, plainGroupId]);
  const token = adminToken();
  const admin = await kafka.connectAdmin(infra.brokers);
  const pids = stackPids(infra);
  let writer;
  try {
    log(`run topics: ${topics.prefix}* (KAFKA_TOPIC_PREFIX of the notifier)`);
    await kafka.createTopics(admin, [topic], PARTITIONS);
    writer = await telemetryWriter({
      brokers: infra.brokers,
      registryUrl: infra.schemaRegistryUrl,
      topic,
      runId,
    });
    const env = notifierEnv({ infra, prefix: topics.prefix, groupId, namespace, token });
    const result = await withChildren(async (children) => {
      const sinks = await startSinks({ count: ENDPOINTS, children });

      // 1. Endpoints registered with a first notifier instance (nothing to consume yet), then stopped.
      const setup = await startTarget('notifier-setup', NOTIFIER_MAIN, { env, children });
      await waitForHttpOk(setup.handle, `${setup.baseUrl}/readyz`, READY_TIMEOUT_MS);
      const secrets = [];
      for (let i = 0; i < ENDPOINTS; i++) {
        const created = await registerEndpoint(setup.baseUrl, token, {
          url: sinks.url('n', i),
          eventTypes: ['vehicle.telemetry'],
        });
        secrets.push(created.secret);
      }
      await sinks.request('secrets', { mode: 'n', secrets });
      await stopTarget(setup.handle);

      // 2. Pre-fill.
      const start = await kafka.endOffsets(admin, [topic]);
      log(`pre-filling ${options.notifierRecords} telemetry records on ${topic}`);
      const fill = await writer.prefill(options.notifierRecords);
      log(`pre-filled in ${fill.seconds} s`);

      // 3. The notifier over the backlog.
      const nodeArgs = options.notifierNodeArgs.split(/\s+/).filter(Boolean);
      let profile;
      if (options.notifierMaxQueue) env.NOTIFIER_MAX_QUEUE_PER_ENDPOINT = String(options.notifierMaxQueue);
      if (options.profile) {
        fs.mkdirSync(PROFILES_DIR, { recursive: true });
        profile = path.join(PROFILES_DIR, `notifier-${startedAt.replace(/[:.]/g, '-')}.cpuprofile`);
        nodeArgs.push(
          '--cpu-prof',
          `--cpu-prof-dir=${PROFILES_DIR}`,
          `--cpu-prof-name=${path.basename(profile)}`,
        );
      }
      const t0 = Date.now();
      const notifier = await startTarget('notifier', NOTIFIER_MAIN, { env, nodeArgs, children });
      const cpuN = startCpuSample({
        target: notifier.handle.pid,
        sinks: sinks.handle.pid,
        benchProcess: process.pid,
        ...pids,
      });
      const backlog = await waitForDeliveries(
        sinks,
        'n',
        options.notifierRecords * ENDPOINTS,
        notifier.handle,
      );
      const usageN = cpuN.stop();
      // Stalled: deliveries over the time since the start, not over a window of a few ms.
      const throughputN = backlog.complete
        ? rateOf(backlog)
        : { ...rateOf({ ...backlog, firstAt: t0, lastAt: Date.now() }), stalled: true };
      log(
        `notifier: ${throughputN.perSec} deliveries/s over ${throughputN.seconds} s (first delivery ${round((backlog.firstAt - t0) / 1000, 2)} s after start)`,
      );

      // 4. Latency: records produced at a fixed rate while the notifier runs.
      const sinceMs = Date.now();
      await sinks.request('latency', { mode: 'n', sinceMs });
      log(`latency phase: ${options.notifierLatencyRate} records/s for ${options.notifierLatencyS} s`);
      const paced = await writer.paced(options.notifierLatencyRate, options.notifierLatencyS);
      const records = options.notifierRecords + paced.records;
      await waitForDeliveries(sinks, 'n', records * ENDPOINTS, notifier.handle);
      await sleep(1_000); // a duplicate would arrive after the last expected delivery
      const metrics = await scrapeMetrics(`${notifier.baseUrl}/metrics`).catch(() => []);
      const peakRssN = processMemoryMiB(notifier.handle.pid)?.hwm;
      const exitN = await stopTarget(notifier.handle);
      const finalN = await sinks.request('report', { mode: 'n' });

      // 5. The plain forwarders over the same records (each its own group, from the range's start).
      const runPlain = async ({ name, script, groupId: plainGroup, mode }) => {
        await kafka.setGroupOffsets(admin, plainGroup, start);
        const plain = await startTarget(name, script, {
          env: {
            KAFKA_BROKERS: infra.kafkaBrokers,
            BENCH_GROUP_ID: plainGroup,
            BENCH_SOURCE_TOPICS: topic,
            BENCH_SINK_URLS: Array.from({ length: ENDPOINTS }, (_, i) => sinks.url(mode, i)).join(','),
            BENCH_ENDPOINT_CONCURRENCY: String(ENDPOINT_CONCURRENCY),
          },
          children,
        });
        const cpu = startCpuSample({
          target: plain.handle.pid,
          sinks: sinks.handle.pid,
          benchProcess: process.pid,
          ...pids,
        });
        await waitForDeliveries(sinks, mode, records * ENDPOINTS, plain.handle);
        const usage = cpu.stop();
        await sleep(1_000);
        const final = await sinks.request('report', { mode, light: true });
        const peakRssMiB = processMemoryMiB(plain.handle.pid)?.hwm;
        const exit = await stopTarget(plain.handle);
        return { usage, final, exit, peakRssMiB, throughput: rateOf(final) };
      };
      const p1 = await runPlain({
        name: 'plain-notify-forward',
        script: PLAIN_FORWARD,
        groupId: plainGroupId,
        mode: 'p',
      });
      const p2 = await runPlain({
        name: 'plain-notify-forward-platformatic',
        script: PLAIN_FORWARD_PLATFORMATIC,
        groupId: `${plainGroupId}-platformatic`,
        mode: 'q',
      });

      const verdict = (a) =>
        a.exact
          ? `exact (${a.received} of ${a.expected})`
          : `MISMATCH: ${a.received} received of ${a.expected}, ${a.missing} missing, ${a.duplicates} duplicates, ${a.unexpectedIds} unexpected ids`;
      const accN = accounting(finalN, records);
      accN.verdict = verdict(accN);
      const plainResult = (x) => {
        const acc = accounting(x.final, records);
        acc.verdict = verdict(acc);
        return {
          throughput: x.throughput,
          accounting: acc,
          cpu: x.usage,
          cpuMicrosPerDelivery: perDelivery(x.usage, x.final.deliveries),
          peakRssMiB: x.peakRssMiB,
          exit: x.exit,
        };
      };
      const perDelivery = (usage, n) =>
        usage.cores.target === undefined
          ? undefined
          : round(((usage.cores.target * usage.wallSeconds) / n) * 1e6, 1);
      const pick = (name) =>
        metrics
          .filter((m) => m.name.startsWith(name))
          .map((m) => ({ name: m.name, labels: m.labels, value: m.value }));
      return {
        prefill: fill,
        paced,
        records,
        notifier: {
          throughput: throughputN,
          firstDeliveryAfterStartS: round((backlog.firstAt - t0) / 1000, 3),
          complete: backlog.complete,
          accounting: accN,
          latency: latencyOf(finalN.latenciesMs),
          signatures: { verified: finalN.verified, failed: finalN.verifyFailed, errors: finalN.verifyErrors },
          cpu: usageN,
          cpuMicrosPerDelivery: perDelivery(usageN, backlog.deliveries),
          peakRssMiB: peakRssN,
          exit: exitN,
          profile: profile && fs.existsSync(profile) ? path.relative(report.ROOT, profile) : undefined,
          metrics: pick('notifier_'),
        },
        plain: plainResult(p1),
        plainPlatformatic: plainResult(p2),
        ratio: ratio(throughputN.perSec, p1.throughput.perSec),
        ratioPlatformatic: ratio(throughputN.perSec, p2.throughput.perSec),
      };
    });
    const r = {
      benchmark: 'notifier',
      startedAt,
      finishedAt: new Date().toISOString(),
      parameters: {
        quick: options.quick,
        records: options.notifierRecords,
        endpoints: ENDPOINTS,
        endpointConcurrency: ENDPOINT_CONCURRENCY,
        vehicles: VEHICLES,
        partitions: PARTITIONS,
        latencyRate: options.notifierLatencyRate,
        latencySeconds: options.notifierLatencyS,
        maxQueuePerEndpoint: options.notifierMaxQueue || 'default (1,000)',
        topicPrefix: topics.prefix,
        topic,
        method: 'bench/README.md (notifier) at machine.gitCommit',
        notifierEnv: {
          ...notifierEnv({ infra, prefix: topics.prefix, groupId, namespace, token: '<redacted>' }),
        },
        infrastructure: infra,
        goals: GOALS,
      },
      machine: report.machineInfo(),
      result,
      goals: {
        deliveriesPerSec:
          !result.notifier.throughput.stalled &&
          result.notifier.throughput.perSec >= GOALS.minDeliveriesPerSec,
        ratio: result.ratio >= GOALS.minRatio,
        exactlyOnce: result.notifier.accounting.exact,
      },
    };
    printReport(r);
    report.writeResults('notifier', r);
    return r;
  } finally {
    await writer?.disconnect().catch(() => {});
    const deleted = await deleteRedisNamespace(infra.redisUrl, namespace).catch((err) => {
      log(`Redis cleanup failed: ${err.message}`);
      return undefined;
    });
    if (deleted !== undefined) log(`Redis keys deleted under ${namespace}: ${deleted}`);
    await kafka.deleteRunResources(admin, topics.prefix, { registryUrl: infra.schemaRegistryUrl });
    await admin.disconnect().catch(() => {});
  }
}

module.exports = { run };
