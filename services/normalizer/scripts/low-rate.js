'use strict';
/* global __filename, fetch */

/**
 * What the normalizer costs idle and at a low steady rate, per consumer setting: Kafka requests per second by
 * API, CPU (% of one core) and latency. Against the running infrastructure (KAFKA_BROKERS, SCHEMA_REGISTRY_URL),
 * on topics of its own (`lowrate.<id>.`, deleted at the end). Build first (`npx tsc -b`).
 *
 *   node services/normalizer/scripts/low-rate.js [--idle-s=60] [--rate=50] [--rate-s=60] \
 *     [--max-wait-ms=1000] [--min-bytes=1] [--commit-interval-ms=1000]
 *
 * The normalizer runs as a child process (this script with `--child`) with
 * packages/kafka/tools/count-kafka-requests.js preloaded. Latency is from the raw record's send to the canonical
 * record's timestamp (set when the normalizer produces it), by event id.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { randomUUID } = require('node:crypto');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const args = Object.fromEntries(
  process.argv
    .slice(2)
    .filter((a) => a.startsWith('--'))
    .map((a) => {
      const [key, value] = a.slice(2).split('=');
      return [key, value ?? 'true'];
    }),
);
const number = (name, fallback) => (args[name] === undefined ? fallback : Number(args[name]));

if (args.child) runChild();
else
  main().catch((err) => {
    process.stderr.write(`low-rate: ${err.stack ?? err}\n`);
    process.exit(1);
  });

/** The normalizer, as main.ts builds it, with the consumer settings of the run. */
function runChild() {
  const { createLogger, createMetricsRegistry } = require('@ampflow/observability');
  const { createKafka } = require('@ampflow/kafka');
  const { Topics } = require('@ampflow/contracts');
  const { createNormalizerApp } = require('../dist/app');
  const prefix = process.env.KAFKA_TOPIC_PREFIX;
  const logger = createLogger({ service: 'normalizer', level: 'warn' });
  const consumer = JSON.parse(process.env.LOW_RATE_CONSUMER);
  const app = createNormalizerApp({
    settings: {
      httpPort: Number(process.env.HTTP_PORT),
      schemaRegistryUrl: process.env.SCHEMA_REGISTRY_URL,
      shutdownDrainMs: 5_000,
      consumerGroupId: `${prefix}normalizer`,
      canonicalTopicPartitions: 6,
      rawTopics: [Topics.rawSmartcar, Topics.rawTelematica].map((t) => prefix + t),
      canonicalTopicName: (topic) => prefix + topic,
      consumer,
    },
    kafka: createKafka({ brokers: process.env.KAFKA_BROKERS.split(','), clientId: 'low-rate', logger }),
    logger,
    registry: createMetricsRegistry('normalizer'),
    onFatal: (error) => {
      logger.error({ err: error }, 'fatal');
      process.exit(1);
    },
  });
  process.once('SIGTERM', () => app.stop().then(() => process.exit(0)));
  app.start().then(() => process.send?.('started'));
}

async function main() {
  const { Kafka, logLevel, Partitioners } = require('kafkajs');
  const { Topics, RawHeaders } = require('@ampflow/contracts');
  const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
  const idleS = number('idle-s', 60);
  const rate = number('rate', 50);
  const rateS = number('rate-s', 60);
  const consumer = {
    maxWaitTimeMs: number('max-wait-ms', undefined),
    minBytes: number('min-bytes', undefined),
    commitIntervalMs: number('commit-interval-ms', undefined),
  };
  const prefix = `lowrate.${Date.now().toString(36)}.`;
  const kafka = new Kafka({ clientId: 'low-rate-driver', brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const raw = [Topics.rawSmartcar, Topics.rawTelematica].map((t) => prefix + t);
  await admin.createTopics({
    waitForLeaders: true,
    topics: raw.map((topic) => ({ topic, numPartitions: 6 })),
  });
  const counts = path.join(os.tmpdir(), `${prefix}requests.jsonl`);
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const child = spawn(
    process.execPath,
    ['-r', path.join(ROOT, 'packages/kafka/tools/count-kafka-requests.js'), __filename, '--child'],
    {
      cwd: ROOT,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: {
        ...process.env,
        KAFKA_BROKERS: brokers.join(','),
        KAFKA_TOPIC_PREFIX: prefix,
        HTTP_PORT: String(port),
        LOW_RATE_CONSUMER: JSON.stringify(consumer),
        KAFKA_REQUEST_COUNTS: counts,
        KAFKA_REQUEST_COUNTS_INTERVAL_MS: '5000',
      },
    },
  );
  await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`normalizer exited ${code}`)));
  });
  const phases = [];
  const mark = (name) => phases.push({ name, at: Date.now() });

  // Latency: canonical telemetry records, matched to the raw send time by event id.
  const sent = new Map();
  const latencies = [];
  const watcher = kafka.consumer({ groupId: `${prefix}watcher`, maxWaitTimeInMs: 100 });
  await watcher.connect();
  await watcher.subscribe({ topics: [prefix + Topics.vehicleTelemetry], fromBeginning: true });
  await watcher.run({
    eachMessage: async ({ message }) => {
      const id = message.headers?.[RawHeaders.eventId]?.toString().replace(/^telematica:/, '');
      const at = sent.get(id);
      if (at !== undefined) latencies.push(Number(message.timestamp) - at);
    },
  });

  mark('idle');
  await sleep(idleS * 1000);
  mark(`${rate}/s`);
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const body = JSON.parse(
    fs.readFileSync(path.join(ROOT, 'packages/testing/fixtures/telematica/vehicle-soc.json'), 'utf8'),
  );
  const from = Date.now();
  for (let i = 0; i < rate * rateS; i += 1) {
    await sleep(Math.max(0, from + (i * 1000) / rate - Date.now()));
    const id = `msg_${randomUUID().replace(/-/g, '')}`;
    const at = Date.now();
    sent.set(id, at);
    await producer.send({
      topic: prefix + Topics.rawTelematica,
      acks: -1,
      messages: [
        {
          key: `veh-${i % 20}`,
          value: JSON.stringify({ ...body, vehicleId: `veh-${i % 20}` }),
          timestamp: String(at),
          headers: {
            [RawHeaders.provider]: 'telematica',
            [RawHeaders.eventId]: id,
            [RawHeaders.eventType]: body.type,
            [RawHeaders.receivedAt]: new Date(at).toISOString(),
          },
        },
      ],
    });
  }
  mark('end');
  await sleep(6_000);
  await producer.disconnect();
  await watcher.disconnect();
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));

  // Windows of the counter file that fall wholly inside a phase.
  const windows = fs
    .readFileSync(counts, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line))
    .map((w) => ({ ...w, end: Date.parse(w.at), start: Date.parse(w.at) - w.seconds * 1000 }));
  const report = { consumer, rate, phases: {} };
  for (let i = 0; i < phases.length - 1; i += 1) {
    const from = phases[i].at;
    const to = phases[i + 1].at;
    const inside = windows.filter((w) => w.start >= from && w.end <= to);
    const seconds = inside.reduce((a, w) => a + w.seconds, 0);
    const requests = {};
    for (const w of inside)
      for (const [k, v] of Object.entries(w.requests)) requests[k] = (requests[k] ?? 0) + v;
    report.phases[phases[i].name] = {
      seconds,
      requestsPerSecond: Object.fromEntries(
        Object.entries(requests).map(([k, v]) => [k, Math.round((v / seconds) * 10) / 10]),
      ),
      cpuPercentOfCore: Math.round((inside.reduce((a, w) => a + w.cpuMs, 0) / (seconds * 1000)) * 1000) / 10,
    };
  }
  latencies.sort((a, b) => a - b);
  const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
  report.latencyMs = {
    records: latencies.length,
    sent: sent.size,
    p50: pct(50),
    p99: pct(99),
    max: pct(100),
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);

  const all = await admin.listTopics();
  await admin.deleteTopics({ topics: all.filter((t) => t.startsWith(prefix)) }).catch(() => undefined);
  await admin.deleteGroups([`${prefix}normalizer`, `${prefix}watcher`]).catch(() => undefined);
  await admin.disconnect();
  fs.rmSync(counts, { force: true });
  // The schemas the normalizer registered under the run's subjects.
  const registry = process.env.SCHEMA_REGISTRY_URL;
  const subjects = (await (await fetch(`${registry}/subjects`)).json()).filter((s) => s.startsWith(prefix));
  for (const subject of subjects) {
    await fetch(`${registry}/subjects/${encodeURIComponent(subject)}`, { method: 'DELETE' });
    await fetch(`${registry}/subjects/${encodeURIComponent(subject)}?permanent=true`, { method: 'DELETE' });
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
