'use strict';

/**
 * Normalizer benchmark: the real normalizer app (in this process) against a plain kafkajs consume-and-forward
 * of the same pre-filled raw records, alternating for several rounds. Throughput is read from the output
 * topics' high watermarks (polled every 200 ms). See bench/README.md.
 */
const path = require('node:path');
const { randomUUID } = require('node:crypto');
const { Partitioners } = require('kafkajs');
const { fixtureBytes } = require('@ampflow/testing');
const { CANONICAL_SCHEMA_FILES, RawHeaders, dlqTopic } = require('@ampflow/contracts');
const { createKafka } = require('@ampflow/kafka');
const { createMetricsRegistry } = require('@ampflow/observability');
const pino = require('pino');
const { startCpuSample } = require('./lib/cpu');
const { ensureBuild, ensureInfrastructure } = require('./lib/infra');
const { formatTable, median, round } = require('./lib/stats');
const { loadWebhookFixtures, withEventId } = require('./lib/webhook-requests');
const kb = require('./lib/kafka-bench');

const { ROOT, log } = kb;
const NORMALIZER_APP = path.join(ROOT, 'services', 'normalizer', 'dist', 'app.js');
const PARTITIONS = 6;
const POLL_INTERVAL_MS = 200;
const RUN_TIMEOUT_MS = 240_000;
const PREFILL_BATCH = 500; // fixture keys are few, so one batch can put many records on one partition (1 MB cap)
const PREFILL_CONCURRENCY = 8;
const GOALS = { minRecordsPerSec: 10_000, minRatio: 0.6 };
const CANONICAL_TOPICS = Object.keys(CANONICAL_SCHEMA_FILES);

/** The Kafka key the ingress uses: vehicle id, else charger or user id (services/ingress webhook-intake). */
function keyOf(provider, body) {
  if (provider === 'smartcar') return body.vehicleId ?? body.data?.vehicle?.id ?? body.data?.user?.id ?? null;
  return body.vehicleId ?? body.chargerId ?? body.user ?? null;
}

/** Per fixture: what every record built from it shares (key, event type, bytes). */
function recordTemplates() {
  const fixtures = loadWebhookFixtures();
  const smartcar = fixtures.smartcar.map((t) => {
    const body = JSON.parse(t.text);
    return {
      provider: 'smartcar',
      name: t.name,
      template: t,
      eventType: body.eventType,
      key: keyOf('smartcar', body),
    };
  });
  const telematica = fixtures.telematica.map((f) => {
    const body = JSON.parse(f.body.toString('utf8'));
    return {
      provider: 'telematica',
      name: f.name,
      value: fixtureBytes(f.name),
      eventType: body.type,
      key: keyOf('telematica', body),
    };
  });
  return { smartcar, telematica };
}

/** Record i of the mix: alternately Smartcar / Telematica, cycling through each provider's fixtures. */
function buildRecord(i, templates, receivedAt) {
  const slot = i >> 1;
  if (i % 2 === 0) {
    const t = templates.smartcar[slot % templates.smartcar.length];
    const eventId = randomUUID();
    return {
      topicIndex: 0,
      name: t.name,
      message: {
        key: t.key,
        value: withEventId(t.template, eventId),
        headers: {
          [RawHeaders.provider]: 'smartcar',
          [RawHeaders.eventId]: eventId,
          [RawHeaders.eventType]: t.eventType,
          [RawHeaders.receivedAt]: receivedAt,
          [RawHeaders.contentType]: 'application/json',
        },
      },
    };
  }
  const t = templates.telematica[slot % templates.telematica.length];
  return {
    topicIndex: 1,
    name: t.name,
    message: {
      key: t.key,
      value: t.value,
      headers: {
        [RawHeaders.provider]: 'telematica',
        [RawHeaders.eventId]: `msg_${randomUUID().replace(/-/g, '')}`,
        [RawHeaders.eventType]: t.eventType,
        [RawHeaders.receivedAt]: receivedAt,
        [RawHeaders.contentType]: 'application/json',
      },
    },
  };
}

/** Writes `count` raw records (Smartcar on rawTopics[0], Telematica on rawTopics[1]); acks=-1. */
async function prefill(kafka, rawTopics, count, templates) {
  const producer = kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
  });
  await producer.connect();
  const started = Date.now();
  const perFixture = {};
  let next = 0;
  async function worker() {
    while (next < count) {
      const from = next;
      const to = Math.min(count, from + PREFILL_BATCH);
      next = to;
      const receivedAt = new Date().toISOString();
      const byTopic = [[], []];
      for (let i = from; i < to; i++) {
        const r = buildRecord(i, templates, receivedAt);
        byTopic[r.topicIndex].push(r.message);
        perFixture[r.name] = (perFixture[r.name] ?? 0) + 1;
      }
      await producer.sendBatch({
        acks: -1,
        topicMessages: byTopic
          .map((messages, i) => ({ topic: rawTopics[i], messages }))
          .filter((t) => t.messages.length > 0),
      });
    }
  }
  try {
    await Promise.all(Array.from({ length: PREFILL_CONCURRENCY }, worker));
  } finally {
    await producer.disconnect();
  }
  return { records: count, perFixture, seconds: round((Date.now() - started) / 1000, 2) };
}

/** The real normalizer, in process, on the bench's raw topics; output topics get a per-round prefix. */
async function runNormalizer({ brokers, registryUrl, rawTopics, records, admin, runId, roundNumber, pids }) {
  const { createNormalizerApp } = require(NORMALIZER_APP);
  const logger = pino({ level: 'silent' });
  const prefix = `bench.${runId}.r${roundNumber}`;
  const topicName = (t) => `${prefix}.${t}`;
  const outputTopics = CANONICAL_TOPICS.map(topicName);
  const dlqTopics = rawTopics.map(dlqTopic);
  const dlqBefore = await kb.recordCount(admin, dlqTopics);
  const registry = createMetricsRegistry('normalizer', { defaultMetrics: false });
  const app = createNormalizerApp({
    settings: {
      httpPort: 0,
      schemaRegistryUrl: registryUrl,
      shutdownDrainMs: 5_000,
      consumerGroupId: `${prefix}.normalizer`,
      canonicalTopicPartitions: PARTITIONS,
      rawTopics,
      canonicalTopicName: topicName,
      sessionTimeoutMs: 10_000,
    },
    kafka: createKafka({ brokers, clientId: `bench-normalizer-${roundNumber}`, logger }),
    logger,
    registry,
    onFatal: (error) => logger.error({ err: error }, 'normalizer reported itself stuck'),
  });
  const t0 = process.hrtime.bigint();
  const cpu = startCpuSample({ benchProcess: process.pid, ...pids });
  let startError;
  let startedAtMs;
  const starting = app.start().then(
    () => {
      startedAtMs = Number(process.hrtime.bigint() - t0) / 1e6;
    },
    (err) => {
      startError = err;
    },
  );
  try {
    const poll = await kb.pollUntil(
      async () =>
        (await kb.recordCount(admin, outputTopics)) + (await kb.recordCount(admin, dlqTopics)) - dlqBefore,
      records,
      {
        t0,
        intervalMs: POLL_INTERVAL_MS,
        timeoutMs: RUN_TIMEOUT_MS,
        isFailed: () => startError && `normalizer failed to start: ${startError.message}`,
      },
    );
    const usage = cpu.stop();
    await starting;
    const perTopic = {};
    for (const t of CANONICAL_TOPICS) perTopic[t] = await kb.recordCount(admin, [topicName(t)]);
    const deadLetters = (await kb.recordCount(admin, dlqTopics)) - dlqBefore;
    const metrics = await registry.getMetricsAsJSON();
    const counter = (name) =>
      (metrics.find((m) => m.name === name)?.values ?? []).reduce((s, v) => s + v.value, 0);
    return {
      target: 'normalizer',
      ...kb.throughput(poll, records),
      startResolvedAtS: startedAtMs === undefined ? undefined : round(startedAtMs / 1000, 3),
      perTopic,
      deadLetters,
      metricRecordsIn: counter('normalizer_records_in_total'),
      metricRecordsOut: counter('normalizer_records_out_total'),
      cpu: usage,
      cpuMicrosPerRecord: round(((usage.cores.benchProcess * usage.wallSeconds) / records) * 1e6, 1),
      outputTopics,
      subjects: outputTopics.map((t) => `${t}-value`),
      pollSamples: poll.samples.length,
    };
  } finally {
    await starting;
    await app.stop().catch((err) => log(`normalizer stop failed: ${err.message}`));
  }
}

/**
 * Baseline: consume the raw topics with a new group and produce each batch's messages unchanged (key, value,
 * headers) to one output topic with acks=-1, then resolve the offsets. No decoding or encoding.
 */
async function runPlainForward({ brokers, rawTopics, records, admin, runId, roundNumber, pids }) {
  const logger = pino({ level: 'silent' });
  const outputTopic = `bench.${runId}.r${roundNumber}.plain-forward`;
  await kb.createTopics(admin, [outputTopic], PARTITIONS);
  const kafka = createKafka({ brokers, clientId: `bench-plain-${roundNumber}`, logger });
  const producer = kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
  });
  const consumer = kafka.consumer({
    groupId: `bench.${runId}.r${roundNumber}.plain`,
    sessionTimeout: 10_000,
    heartbeatInterval: 3_000,
    maxWaitTimeInMs: 1_000,
    allowAutoTopicCreation: false,
  });
  let crashed;
  consumer.on(consumer.events.CRASH, (e) => {
    crashed = e.payload.error;
  });
  const t0 = process.hrtime.bigint();
  const cpu = startCpuSample({ benchProcess: process.pid, ...pids });
  let startedAtMs;
  const starting = (async () => {
    await producer.connect();
    await consumer.connect();
    await consumer.subscribe({ topics: rawTopics, fromBeginning: true });
    await consumer.run({
      autoCommit: true,
      autoCommitInterval: 1_000,
      eachBatchAutoResolve: false,
      eachBatch: async ({
        batch,
        resolveOffset,
        heartbeat,
        commitOffsetsIfNecessary,
        isRunning,
        isStale,
      }) => {
        if (batch.messages.length === 0 || !isRunning() || isStale()) return;
        await producer.send({
          topic: outputTopic,
          acks: -1,
          messages: batch.messages.map((m) => ({ key: m.key, value: m.value, headers: m.headers })),
        });
        resolveOffset(batch.lastOffset());
        await commitOffsetsIfNecessary();
        await heartbeat();
      },
    });
    startedAtMs = Number(process.hrtime.bigint() - t0) / 1e6;
  })().catch((err) => {
    crashed = err;
  });
  try {
    const poll = await kb.pollUntil(() => kb.recordCount(admin, [outputTopic]), records, {
      t0,
      intervalMs: POLL_INTERVAL_MS,
      timeoutMs: RUN_TIMEOUT_MS,
      isFailed: () => crashed && `plain forwarder failed: ${crashed.message}`,
    });
    const usage = cpu.stop();
    return {
      target: 'plain-forward',
      ...kb.throughput(poll, records),
      startResolvedAtS: startedAtMs === undefined ? undefined : round(startedAtMs / 1000, 3),
      cpu: usage,
      cpuMicrosPerRecord: round(((usage.cores.benchProcess * usage.wallSeconds) / records) * 1e6, 1),
      outputTopics: [outputTopic],
      pollSamples: poll.samples.length,
    };
  } finally {
    await starting;
    await consumer.disconnect().catch(() => {});
    await producer.disconnect().catch(() => {});
  }
}

function summarize(runs) {
  return {
    steadyPerSec: round(median(runs.map((r) => r.steadyPerSec)), 0),
    totalPerSec: round(median(runs.map((r) => r.totalPerSec)), 0),
    firstOutputAtS: round(median(runs.map((r) => r.firstOutputAtS)), 2),
    cpuMicrosPerRecord: round(median(runs.map((r) => r.cpuMicrosPerRecord)), 1),
    benchProcessCores: round(median(runs.map((r) => r.cpu.cores.benchProcess)), 2),
    kafkaCores: round(median(runs.map((r) => r.cpu.cores.kafka)), 2),
    machineBusy: round(median(runs.map((r) => r.cpu.cores.machineBusy)), 2),
  };
}

function printReport(report) {
  const p = report.parameters;
  const s = report.summary;
  log('');
  log(
    `medians of ${p.rounds} round(s); ${p.records} raw records (${p.partitions} partitions per raw topic); ` +
      `${report.machine.cpuCount} CPUs, node ${report.machine.nodeVersion}`,
  );
  const headers = [
    'target',
    'steady rec/s',
    'total rec/s',
    'first output s',
    'vs plain (steady)',
    'process cores',
    'CPU µs/rec',
    'kafka cores',
  ];
  const rows = ['normalizer', 'plainForward'].map((key) => [
    key === 'normalizer' ? 'normalizer' : 'plain-forward',
    s[key].steadyPerSec,
    s[key].totalPerSec,
    s[key].firstOutputAtS,
    key === 'normalizer' ? s.ratioSteady : '1',
    s[key].benchProcessCores,
    s[key].cpuMicrosPerRecord,
    s[key].kafkaCores,
  ]);
  process.stdout.write(`\n${formatTable(headers, rows)}\n\n`);
  log(
    'steady = records from the first poll that saw output to the poll that saw all of them (startup ' +
      'excluded); total = all records / time from start() (includes topic creation, schema registration, ' +
      'group join)',
  );
  log(`ratio normalizer/plain: steady ${s.ratioSteady}, total ${s.ratioTotal}`);
  log('per round:');
  for (const r of report.rounds) {
    for (const [key, x] of [
      ['normalizer', r.normalizer],
      ['plain-forward', r.plainForward],
    ]) {
      log(
        `  round ${r.round} ${key}: steady ${x.steadyPerSec} rec/s over ${x.steadySeconds} s, total ` +
          `${x.totalPerSec} rec/s, first output at ${x.firstOutputAtS} s, start() resolved at ` +
          `${x.startResolvedAtS} s, done at ${x.doneAtS} s${x.timedOut ? ' TIMED OUT' : ''}; cores: ` +
          Object.entries(x.cpu.cores)
            .filter(([, v]) => v !== undefined)
            .map(([n, v]) => `${n} ${v}`)
            .join(', '),
      );
      if (key === 'normalizer') {
        log(
          `      outputs by topic: ${JSON.stringify(x.perTopic)}; dead letters ${x.deadLetters}; metrics in ` +
            `${x.metricRecordsIn}, out ${x.metricRecordsOut}`,
        );
      }
    }
  }
  const met = (ok) => (ok ? 'met' : 'NOT met');
  log('');
  log(
    `goals: normalizer >= ${GOALS.minRecordsPerSec} rec/s (steady): ${met(report.goals.recordsPerSec)}; ` +
      `normalizer/plain >= ${GOALS.minRatio} (steady): ${met(report.goals.ratio)}`,
  );
}

async function run(options) {
  const startedAt = new Date().toISOString();
  if (!options.skipBuild) ensureBuild(ROOT);
  const infra = ensureInfrastructure(ROOT);
  const brokers = kb.brokerList(infra);
  const registryUrl = kb.schemaRegistryUrl();
  log(`Kafka ${infra.kafkaBrokers}, registry ${registryUrl} (${infra.source})`);
  const records = options.normalizerRecords;
  const runId = `${startedAt.replace(/[^0-9]/g, '').slice(0, 14)}-${randomUUID().slice(0, 6)}`;
  const rawTopics = [`bench.${runId}.raw.smartcar`, `bench.${runId}.raw.telematica`];
  const createdTopics = [...rawTopics, ...rawTopics.map(dlqTopic)];
  const subjects = [];
  const admin = await kb.connectAdmin(brokers);
  const pids = kb.stackPids(infra);
  try {
    await kb.createTopics(admin, rawTopics, PARTITIONS);
    await kb.createTopics(admin, rawTopics.map(dlqTopic), 1);
    const templates = recordTemplates();
    log(`pre-filling ${records} raw records on ${rawTopics.join(', ')}`);
    const silent = pino({ level: 'silent' });
    const fill = await prefill(
      createKafka({ brokers, clientId: 'bench-prefill', logger: silent }),
      rawTopics,
      records,
      templates,
    );
    const onRaw = await kb.recordCount(admin, rawTopics);
    log(`pre-filled in ${fill.seconds} s; on the raw topics: ${onRaw}`);
    if (onRaw !== records) throw new Error(`expected ${records} raw records, found ${onRaw}`);

    const rounds = [];
    for (let roundNumber = 1; roundNumber <= options.rounds; roundNumber++) {
      const common = { brokers, registryUrl, rawTopics, records, admin, runId, roundNumber, pids };
      log(`round ${roundNumber}/${options.rounds}: normalizer`);
      const normalizer = await runNormalizer(common);
      createdTopics.push(...normalizer.outputTopics);
      subjects.push(...normalizer.subjects);
      log(`  steady ${normalizer.steadyPerSec} rec/s, total ${normalizer.totalPerSec} rec/s`);
      log(`round ${roundNumber}/${options.rounds}: plain-forward`);
      const plainForward = await runPlainForward(common);
      createdTopics.push(...plainForward.outputTopics);
      log(`  steady ${plainForward.steadyPerSec} rec/s, total ${plainForward.totalPerSec} rec/s`);
      rounds.push({ round: roundNumber, normalizer, plainForward });
    }
    const summary = {
      normalizer: summarize(rounds.map((r) => r.normalizer)),
      plainForward: summarize(rounds.map((r) => r.plainForward)),
    };
    summary.ratioSteady = round(summary.normalizer.steadyPerSec / summary.plainForward.steadyPerSec, 3);
    summary.ratioTotal = round(summary.normalizer.totalPerSec / summary.plainForward.totalPerSec, 3);
    const report = {
      benchmark: 'normalizer',
      startedAt,
      finishedAt: new Date().toISOString(),
      parameters: {
        records,
        rounds: options.rounds,
        partitions: PARTITIONS,
        rawTopics,
        order: 'normalizer, plain-forward in every round; each with a new consumer group from the beginning',
        pollIntervalMs: POLL_INTERVAL_MS,
        measurement:
          'sum of the output topics high watermarks (normalizer: 5 canonical topics + dead letters on ' +
          '<raw>.dlq; plain: its output topic), polled every 200 ms. steady = from the first poll with ' +
          'output to the poll with all records; total = from start() to the poll with all records',
        recordMix:
          'alternating Smartcar / Telematica, cycling through the non-verify fixtures; unique event-id per ' +
          'record (Smartcar body eventId rewritten); headers as the ingress writes them; key = vehicle id ' +
          '(else charger / user id, as the ingress)',
        prefillResult: fill,
        normalizerSettings: {
          shutdownDrainMs: 5_000,
          canonicalTopicPartitions: PARTITIONS,
          sessionTimeoutMs: 10_000,
          httpPort: 0,
        },
        plainForward:
          'kafkajs consumer (new group, eachBatch, maxWaitTimeInMs 1000) + kafkajs producer (not idempotent, ' +
          'acks -1, DefaultPartitioner), one send per fetched batch, resolveOffset(lastOffset)',
        cpu: 'benchProcess = this node process (the app or forwarder, plus the 200 ms admin poll), from /proc',
        infrastructure: { ...infra, schemaRegistryUrl: registryUrl },
        goals: GOALS,
      },
      machine: kb.machineInfo(),
      summary,
      goals: {
        recordsPerSec: summary.normalizer.steadyPerSec >= GOALS.minRecordsPerSec,
        ratio: summary.ratioSteady >= GOALS.minRatio,
      },
      rounds,
    };
    printReport(report);
    const file = kb.writeResults('normalizer', report);
    log(`results: ${path.relative(ROOT, file)} (and bench/results/normalizer-latest.json)`);
    return report;
  } finally {
    await kb.deleteTopics(admin, createdTopics);
    await kb.deleteSubjects(registryUrl, subjects);
    await admin.disconnect().catch(() => {});
  }
}

module.exports = { run };
