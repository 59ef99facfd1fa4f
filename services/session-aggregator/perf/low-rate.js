'use strict';
/* global fetch */

/**
 * What the aggregator costs per reading at a low steady rate: Kafka requests by API, Redis round trips (its
 * chunk loads and saves, from its own metrics) and CPU, for one or more builds run one after the other on the
 * same kind of traffic. Against the running infrastructure (KAFKA_BROKERS, SCHEMA_REGISTRY_URL, REDIS_URL), on
 * topics, a group and a Redis namespace of its own (`bench.<runId>.`, deleted at the end). Build first.
 *
 *   node services/session-aggregator/perf/low-rate.js [--rate=50] [--seconds=30] [--vehicles=50] \
 *     [--builds=baseline,current,baseline,current]
 *
 * `baseline` is perf/baseline/dist (from `perf/baseline.sh <commit>`), `current` is dist/. Each build runs as a
 * child process (its main.js) with packages/kafka/tools/count-kafka-requests.js preloaded; each run gets its own
 * topics and group. Readings are Avro VehicleTelemetry, keyed by vehicle, one at a time at `rate` per second,
 * cycling through `vehicles` vehicles that charge (a session each, UPDATED per reading).
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { randomUUID } = require('node:crypto');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const BUILDS = {
  baseline: path.join(__dirname, 'baseline', 'dist', 'main.js'),
  current: path.join(__dirname, '..', 'dist', 'main.js'),
};
const args = Object.fromEntries(
  process.argv
    .slice(2)
    .filter((a) => a.startsWith('--'))
    .map((a) => {
      const [key, value] = a.slice(2).split('=');
      return [key, value ?? 'true'];
    }),
);
const RATE = Number(args.rate ?? 50);
const SECONDS = Number(args.seconds ?? 30);
const VEHICLES = Number(args.vehicles ?? 50);
const RUNS = (args.builds ?? 'baseline,current').split(',');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function metricsOf(port) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const value = (name, label = '') => {
    let sum = 0;
    for (const line of text.split('\n'))
      if (line.startsWith(name) && line.includes(label)) sum += Number(line.split(' ').pop());
    return sum;
  };
  return {
    readings: value('session_aggregator_readings_total'),
    loads: value('session_aggregator_redis_duration_seconds_count', 'operation="load"'),
    saves: value('session_aggregator_redis_duration_seconds_count', 'operation="save"'),
  };
}

async function runOnce(build, index) {
  const { Kafka, logLevel, Partitioners } = require('kafkajs');
  const { SchemaRegistry, SchemaType } = require('@kafkajs/confluent-schema-registry');
  const { Topics, canonicalSchema, emptyTelemetry } = require('@ampflow/contracts');
  const { runPrefix } = require(path.join(ROOT, 'bench/lib/topics'));
  const benchKafka = require(path.join(ROOT, 'bench/lib/kafka'));
  const { deleteRedisNamespace } = require(path.join(ROOT, 'bench/lib/redis'));
  const runId = `${Date.now().toString(36)}-lr${index}`;
  const prefix = runPrefix(runId);
  const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
  const registryUrl = process.env.SCHEMA_REGISTRY_URL;
  const telemetryTopic = prefix + Topics.vehicleTelemetry;
  const admin = await benchKafka.connectAdmin(brokers);
  const namespace = `bench:${runId}:sessions`;
  const counts = path.join(os.tmpdir(), `${runId}-requests.jsonl`);
  try {
    await benchKafka.createTopics(admin, [telemetryTopic, prefix + Topics.chargingSessions], 6);
    const registry = new SchemaRegistry({ host: registryUrl });
    const { id } = await registry.register(
      { type: SchemaType.AVRO, schema: canonicalSchema(Topics.vehicleTelemetry) },
      { subject: `${telemetryTopic}-value` },
    );
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const child = spawn(
      process.execPath,
      ['-r', path.join(ROOT, 'packages/kafka/tools/count-kafka-requests.js'), BUILDS[build]],
      {
        cwd: ROOT,
        stdio: ['ignore', 'inherit', 'inherit'],
        env: {
          ...process.env,
          LOG_LEVEL: 'warn',
          HTTP_PORT: String(port),
          KAFKA_TOPIC_PREFIX: prefix,
          AGGREGATOR_GROUP_ID: `${prefix}aggregator`,
          AGGREGATOR_REDIS_NAMESPACE: namespace,
          SESSION_SWEEP_INTERVAL_MS: '3600000',
          KAFKA_REQUEST_COUNTS: counts,
          KAFKA_REQUEST_COUNTS_INTERVAL_MS: '1000',
        },
      },
    );
    try {
      for (let ready = false; !ready; await sleep(250)) {
        ready = await fetch(`http://127.0.0.1:${port}/readyz`)
          .then((r) => r.ok)
          .catch(() => false);
      }
      const kafka = new Kafka({ clientId: 'low-rate', brokers, logLevel: logLevel.NOTHING });
      const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
      await producer.connect();
      const base = Date.now() - 86_400_000;
      const total = RATE * SECONDS;
      const before = await metricsOf(port);
      const from = Date.now();
      for (let i = 0; i < total; i += 1) {
        await sleep(Math.max(0, from + (i * 1000) / RATE - Date.now()));
        const v = i % VEHICLES;
        const reading = {
          ...emptyTelemetry({
            eventId: randomUUID(),
            provider: 'smartcar',
            vehicleId: `smartcar:${runId}-v${v}`,
            providerVehicleId: `${runId}-v${v}`,
            userId: null,
            occurredAt: base + i * 1_000,
            receivedAt: base + i * 1_000 + 500,
            sourceEventType: 'VEHICLE_STATE',
          }),
          isCharging: true,
          isPluggedIn: true,
          stateOfChargePercent: Math.min(100, 20 + Math.floor(i / VEHICLES)),
        };
        await producer.send({
          topic: telemetryTopic,
          acks: -1,
          messages: [{ key: reading.vehicleId, value: await registry.encode(id, reading) }],
        });
      }
      const to = Date.now();
      for (let t = Date.now(); (await metricsOf(port)).readings - before.readings < total; await sleep(200))
        if (Date.now() - t > 60_000) throw new Error(`${build}: readings not all applied after 60 s`);
      const after = await metricsOf(port);
      await producer.disconnect();
      await sleep(1_500);
      const windows = fs
        .readFileSync(counts, 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line))
        .map((w) => ({ ...w, end: Date.parse(w.at), start: Date.parse(w.at) - w.seconds * 1000 }))
        .filter((w) => w.start >= from - 500 && w.end <= to + 1_000);
      const seconds = windows.reduce((a, w) => a + w.seconds, 0);
      const requests = {};
      for (const w of windows)
        for (const [k, n] of Object.entries(w.requests)) requests[k] = (requests[k] ?? 0) + n;
      // Per reading: requests over the windows scaled to the readings sent in them.
      const readingsInWindows = (seconds * total) / ((to - from) / 1000);
      const perReading = Object.fromEntries(
        Object.entries(requests).map(([k, n]) => [k, Math.round((n / readingsInWindows) * 1000) / 1000]),
      );
      const cpuMs = windows.reduce((a, w) => a + w.cpuMs, 0);
      const readings = after.readings - before.readings;
      return {
        build,
        readings,
        chunks: after.saves - before.saves,
        kafkaPerReading: perReading,
        redisLoadsPerReading: Math.round(((after.loads - before.loads) / readings) * 1000) / 1000,
        redisSavesPerReading: Math.round(((after.saves - before.saves) / readings) * 1000) / 1000,
        cpuUsPerReading: Math.round((cpuMs * 1000) / readingsInWindows),
        cpuPercentOfCore: Math.round((cpuMs / (seconds * 1000)) * 1000) / 10,
      };
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  } finally {
    await benchKafka.deleteRunResources(admin, prefix, { registryUrl }).catch(() => undefined);
    await admin.disconnect();
    await deleteRedisNamespace(process.env.REDIS_URL, namespace).catch(() => undefined);
    fs.rmSync(counts, { force: true });
  }
}

async function main() {
  const results = [];
  for (const [i, build] of RUNS.entries()) {
    const r = await runOnce(build, i);
    process.stdout.write(`${JSON.stringify(r)}\n`);
    results.push(r);
  }
}

main().catch((err) => {
  process.stderr.write(`low-rate: ${err.stack ?? err}\n`);
  process.exit(1);
});
