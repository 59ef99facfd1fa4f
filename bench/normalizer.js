'use strict';

/**
 * Normalizer benchmark: the real normalizer (services/normalizer/dist/main.js, a child process) against a
 * plain kafkajs consume-and-forward (targets/plain-forward.js), each consuming the same records pre-filled
 * on the run's own raw topics (`bench.<runId>.ev.raw.*.v1`: the normalizer gets KAFKA_TOPIC_PREFIX), alternating
 * for several rounds. Progress is the consumer group's committed offsets. See bench/README.md.
 */
const path = require('node:path');
const { randomUUID } = require('node:crypto');
const { Partitioners } = require('kafkajs');
const { RawHeaders } = require('@ampflow/contracts');
const { measureConsumerRun, POLL_INTERVAL_MS } = require('./lib/consumer-run');
const { prepare, stackPids } = require('./lib/infra');
const kafka = require('./lib/kafka');
const { scrapeMetrics, sumOf } = require('./lib/prometheus');
const { assertOwn, runPrefix, runTopics } = require('./lib/topics');
const { stopTarget, withChildren } = require('./lib/processes');
const report = require('./lib/report');
const { medianOf, ratio, round } = require('./lib/stats');
const { loadWebhookFixtures, withEventId } = require('./lib/webhook-requests');

const { ROOT, log } = report;
const NORMALIZER_MAIN = path.join(ROOT, 'services', 'normalizer', 'dist', 'main.js');
const PLAIN_FORWARD = path.join(__dirname, 'targets', 'plain-forward.js');
const PLAIN_FORWARD_PLATFORMATIC = path.join(__dirname, 'targets', 'plain-forward-platformatic.js');
/** The baselines, each the same plain forward on another Kafka client. */
const PLAINS = [
  {
    key: 'plainForward',
    name: 'plain-forward',
    label: 'plain kafkajs',
    script: PLAIN_FORWARD,
    suffix: 'plain',
  },
  {
    key: 'plainPlatformatic',
    name: 'plain-forward-platformatic',
    label: 'plain @platformatic/kafka',
    script: PLAIN_FORWARD_PLATFORMATIC,
    suffix: 'pplain',
  },
];
const PARTITIONS = 6;
const PREFILL_BATCH = 500; // fixture keys are few, so one batch can put many records on one partition (1 MB cap)
const PREFILL_CONCURRENCY = 8;
const GOALS = { minRecordsPerSec: 10_000, minRatio: 0.6 };
const NORMALIZER_ENV = { LOG_LEVEL: 'warn', SHUTDOWN_DRAIN_MS: '5000' };

/** The Kafka key the ingress writes: vehicle id, else charger or user id (its webhook-intake). */
function keyOf(provider, body) {
  if (provider === 'smartcar') return body.vehicleId ?? body.data?.vehicle?.id ?? body.data?.user?.id ?? null;
  return body.vehicleId ?? body.chargerId ?? body.user ?? null;
}

/** Per fixture: what every record built from it shares (key, event type, bytes). */
function recordTemplates() {
  const fixtures = loadWebhookFixtures();
  const smartcar = fixtures.smartcar.map((t) => {
    const body = JSON.parse(t.text);
    return { name: t.name, template: t, eventType: body.eventType, key: keyOf('smartcar', body) };
  });
  const telematica = fixtures.telematica.map((f) => {
    const body = JSON.parse(f.body.toString('utf8'));
    return { name: f.name, value: f.body, eventType: body.type, key: keyOf('telematica', body) };
  });
  return { smartcar, telematica };
}

/** Record i of the mix: alternately Smartcar / Telematica, with the headers the ingress writes. */
function buildRecord(i, templates, receivedAt) {
  const slot = i >> 1;
  const smartcar = i % 2 === 0;
  const t = smartcar
    ? templates.smartcar[slot % templates.smartcar.length]
    : templates.telematica[slot % templates.telematica.length];
  const eventId = smartcar ? randomUUID() : `msg_${randomUUID().replace(/-/g, '')}`;
  return {
    topicIndex: smartcar ? 0 : 1,
    name: t.name,
    message: {
      key: t.key,
      value: smartcar ? withEventId(t.template, eventId) : t.value,
      headers: {
        [RawHeaders.provider]: smartcar ? 'smartcar' : 'telematica',
        [RawHeaders.eventId]: eventId,
        [RawHeaders.eventType]: t.eventType,
        [RawHeaders.receivedAt]: receivedAt,
        [RawHeaders.contentType]: 'application/json',
      },
    },
  };
}

/** Writes `count` raw records (Smartcar on rawTopics[0], Telematica on rawTopics[1]); acks=-1. */
async function prefill(brokers, count, templates, rawTopics) {
  const producer = kafka.quietKafka(brokers, 'bench-prefill').producer({
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

/** Per canonical topic (the run's) and in total: records appended (high watermarks, settled). */
async function outputCounts(admin, topics) {
  const perTopic = {};
  for (const topic of topics.canonical)
    perTopic[topic] = (await kafka.settledRecordCount(admin, [topic])).count;
  return { perTopic, deadLetters: await kafka.recordCount(admin, topics.rawDlq) };
}

/**
 * Kafka-side counts compared with the process's own: fewer on Kafka is loss; more is a duplicate unless
 * someone else writes to the same topics (the run's topics are its own, so that would be a stray writer).
 */
function compare(label, onKafka, counted, othersWriting) {
  if (onKafka < counted) return `${counted - onKafka} ${label} counted but not on Kafka`;
  if (onKafka > counted && !othersWriting) return `${onKafka - counted} more ${label} on Kafka than counted`;
  return undefined;
}

/** Records appended to the run's raw topics after the range, by anything else (0: they are the run's own). */
async function othersWriting(common) {
  return (await kafka.recordCount(common.admin, common.topics.raw)) - common.endCount;
}

/**
 * The real normalizer over the pre-filled range, then its reconciliation: it consumed exactly what its group
 * committed (`normalizer_records_in_total`), nothing of the range is left, and the canonical records and dead
 * letters on Kafka are what it counted.
 */
async function runNormalizer(common, roundNumber) {
  const groupId = `${common.topics.prefix}r${roundNumber}.normalizer`;
  const before = await outputCounts(common.admin, common.topics);
  const { target, result } = await measureConsumerRun({
    ...common,
    name: 'normalizer',
    script: NORMALIZER_MAIN,
    groupId,
    env: {
      ...NORMALIZER_ENV,
      KAFKA_BROKERS: common.infra.kafkaBrokers,
      SCHEMA_REGISTRY_URL: common.infra.schemaRegistryUrl,
      KAFKA_TOPIC_PREFIX: common.topics.prefix,
      NORMALIZER_GROUP_ID: groupId,
      CANONICAL_TOPIC_PARTITIONS: String(PARTITIONS),
    },
  });
  const metrics = await scrapeMetrics(`${target.baseUrl}/metrics`);
  result.exit = await stopTarget(target.handle);
  const after = await outputCounts(common.admin, common.topics);
  const perTopic = Object.fromEntries(
    common.topics.canonical.map((t) => [t, after.perTopic[t] - before.perTopic[t]]),
  );
  const check = {
    committed: await kafka.committedSince(common.admin, groupId, common.start),
    consumed: sumOf(metrics, 'normalizer_records_in_total'),
    outputsOnKafka: Object.values(perTopic).reduce((a, b) => a + b, 0),
    outputsCounted: sumOf(metrics, 'normalizer_records_out_total'),
    deadLettersOnKafka: after.deadLetters - before.deadLetters,
    deadLettersCounted: sumOf(metrics, 'normalizer_dead_letters_total'),
    othersWriting: await othersWriting(common),
    perTopic,
  };
  const others = check.othersWriting > 0;
  const problems = [
    check.committed !== check.consumed && `committed ${check.committed}, consumed ${check.consumed}`,
    check.committed < result.target && `${result.target - check.committed} of the range not committed`,
    compare('canonical records', check.outputsOnKafka, check.outputsCounted, others),
    compare('dead letters', check.deadLettersOnKafka, check.deadLettersCounted, others),
  ].filter(Boolean);
  check.verdict = verdict(problems, check.othersWriting);
  return { ...result, check };
}

function verdict(problems, othersWriting) {
  if (problems.length > 0) return `MISMATCH: ${problems.join('; ')}`;
  return othersWriting > 0
    ? `OK (others appended ${othersWriting} raw records meanwhile: more on Kafka than counted not checked)`
    : 'OK';
}

/** The baseline over the same range: every record it committed forwarded once to its own output topic. */
async function runPlainForward(common, roundNumber, plain) {
  const groupId = `${common.topics.prefix}r${roundNumber}.${plain.suffix}`;
  const outputTopic = `${common.topics.prefix}r${roundNumber}.${plain.name}`;
  await kafka.createTopics(common.admin, assertOwn(common.topics.prefix, [outputTopic]), PARTITIONS);
  const { target, result } = await measureConsumerRun({
    ...common,
    name: plain.name,
    script: plain.script,
    groupId,
    env: {
      KAFKA_BROKERS: common.infra.kafkaBrokers,
      BENCH_GROUP_ID: groupId,
      BENCH_SOURCE_TOPICS: assertOwn(common.topics.prefix, common.topics.raw).join(','),
      BENCH_OUTPUT_TOPIC: outputTopic,
    },
  });
  result.exit = await stopTarget(target.handle);
  const check = {
    committed: await kafka.committedSince(common.admin, groupId, common.start),
    forwarded: (await kafka.settledRecordCount(common.admin, [outputTopic])).count,
    othersWriting: await othersWriting(common),
  };
  const problems = [
    check.committed < result.target && `${result.target - check.committed} of the range not committed`,
    compare('forwarded records', check.forwarded, check.committed, false),
  ].filter(Boolean);
  check.verdict = verdict(problems, 0);
  return { ...result, check };
}

function summarize(runs) {
  return {
    steadyPerSec: medianOf(runs, (r) => r.steadyPerSec, 0),
    totalPerSec: medianOf(runs, (r) => r.totalPerSec, 0),
    firstOutputAtS: medianOf(runs, (r) => r.firstOutputAtS),
    targetCpuMicrosPerRecord: medianOf(runs, (r) => r.targetCpuMicrosPerRecord, 1),
    targetCores: medianOf(runs, (r) => r.cpu.cores.target),
    targetPeakRssMiB: medianOf(runs, (r) => r.targetPeakRssMiB, 0),
    kafkaCores: medianOf(runs, (r) => r.cpu.cores.kafka),
    machineBusy: medianOf(runs, (r) => r.cpu.cores.machineBusy),
  };
}

function printReport(r) {
  const p = r.parameters;
  const s = r.summary;
  log('');
  log(
    `medians of ${p.rounds} round(s); ${p.range} raw records (${p.records} pre-filled); ` +
      `${r.machine.cpuCount} CPUs, node ` +
      r.machine.nodeVersion,
  );
  const headers = [
    'target',
    'steady rec/s',
    'total rec/s',
    'first commit s',
    'vs kafkajs plain',
    'vs platformatic plain',
  ];
  report.printTable(
    [...headers, 'target cores', 'CPU µs/rec', 'peak RSS MiB', 'kafka cores'],
    [['normalizer', 'normalizer'], ...PLAINS.map((p) => [p.key, p.name])].map(([key, label]) => [
      label,
      s[key].steadyPerSec,
      s[key].totalPerSec,
      s[key].firstOutputAtS,
      ratio(s[key].steadyPerSec, s.plainForward.steadyPerSec),
      ratio(s[key].steadyPerSec, s.plainPlatformatic.steadyPerSec),
      s[key].targetCores,
      s[key].targetCpuMicrosPerRecord,
      s[key].targetPeakRssMiB,
      s[key].kafkaCores,
    ]),
  );
  log(
    'steady = records committed from the first poll that saw a commit to the poll that saw all of them ' +
      '(startup excluded); total = all records / time from spawning the process',
  );
  log(`ratio normalizer/plain kafkajs: steady ${s.ratioSteady}, total ${s.ratioTotal}`);
  log(`ratio normalizer/plain @platformatic/kafka: steady ${s.ratioSteadyPlatformatic}`);
  log('peak RSS: VmHWM of the target process at the end of its run');
  log('per round:');
  for (const rr of r.rounds) {
    for (const x of [rr.normalizer, rr.plainForward, rr.plainPlatformatic]) {
      log(
        `  round ${rr.round} ${x.name}: steady ${x.steadyPerSec} rec/s over ${x.steadySeconds} s, total ` +
          `${x.totalPerSec} rec/s, first commit at ${x.firstOutputAtS} s, done at ${x.doneAtS} s` +
          `${x.timedOut ? ' TIMED OUT' : ''}; exit ${x.exit.code ?? x.exit.signal}; cores: ` +
          report.formatCores(x.cpu.cores),
      );
      const c = x.check;
      log(
        x.name === 'normalizer'
          ? `      committed ${c.committed}, consumed ${c.consumed}; canonical ${c.outputsOnKafka} on Kafka / ${c.outputsCounted} counted ` +
              `${JSON.stringify(c.perTopic)}; dead letters ${c.deadLettersOnKafka} / ${c.deadLettersCounted}: ${c.verdict}`
          : `      committed ${c.committed}, forwarded ${c.forwarded}: ${c.verdict}`,
      );
    }
  }
  log('');
  log(
    `goals: normalizer >= ${GOALS.minRecordsPerSec} rec/s (steady): ${report.met(r.goals.recordsPerSec)}; ` +
      `normalizer/plain >= ${GOALS.minRatio} (steady): ${report.met(r.goals.ratio)}`,
  );
}

async function run(options) {
  const startedAt = new Date().toISOString();
  const infra = prepare(options);
  const records = options.normalizerRecords;
  const runId = report.runIdOf(startedAt);
  const topics = runTopics(runPrefix(runId));
  const admin = await kafka.connectAdmin(infra.brokers);
  try {
    // The run's own topics, created before anything starts (the normalizer would create the canonical and
    // dead-letter ones, with the same partition counts; existing ones are left as they are).
    log(`run topics: ${topics.prefix}* (KAFKA_TOPIC_PREFIX of every process it starts)`);
    await kafka.createTopics(admin, [...topics.raw, ...topics.canonical], PARTITIONS);
    await kafka.createTopics(admin, topics.rawDlq, 1);
    const start = await kafka.endOffsets(admin, topics.raw);
    log(`pre-filling ${records} raw records on ${topics.raw.join(', ')}`);
    const fill = await prefill(
      infra.brokers,
      records,
      recordTemplates(),
      assertOwn(topics.prefix, topics.raw),
    );
    const end = await kafka.endOffsets(admin, topics.raw);
    const added = kafka.rangeSize(start, end);
    log(
      `pre-filled in ${fill.seconds} s; the raw topics gained ${added} records (others wrote ${added - records})`,
    );
    if (added < records) throw new Error(`expected ${records} more raw records, found ${added}`);
    const endCount = await kafka.recordCount(admin, topics.raw);
    const common = { infra, admin, runId, topics, start, end, endCount, pids: stackPids(infra) };
    const rounds = await withChildren(async (children) => {
      const results = [];
      for (let n = 1; n <= options.rounds; n++) {
        log(`round ${n}/${options.rounds}: normalizer`);
        const normalizer = await runNormalizer({ ...common, children }, n);
        log(
          `  steady ${normalizer.steadyPerSec} rec/s, total ${normalizer.totalPerSec}; ${normalizer.check.verdict}`,
        );
        const result = { round: n, normalizer };
        for (const plain of PLAINS) {
          log(`round ${n}/${options.rounds}: ${plain.name}`);
          const x = await runPlainForward({ ...common, children }, n, plain);
          log(`  steady ${x.steadyPerSec} rec/s, total ${x.totalPerSec}; ${x.check.verdict}`);
          result[plain.key] = x;
        }
        results.push(result);
      }
      return results;
    });
    const summary = {
      normalizer: summarize(rounds.map((r) => r.normalizer)),
      plainForward: summarize(rounds.map((r) => r.plainForward)),
      plainPlatformatic: summarize(rounds.map((r) => r.plainPlatformatic)),
    };
    summary.ratioSteadyPlatformatic = ratio(
      summary.normalizer.steadyPerSec,
      summary.plainPlatformatic.steadyPerSec,
    );
    summary.ratioSteady = ratio(summary.normalizer.steadyPerSec, summary.plainForward.steadyPerSec);
    summary.ratioTotal = ratio(summary.normalizer.totalPerSec, summary.plainForward.totalPerSec);
    const checks = rounds.flatMap((r) => [
      r.normalizer.check.verdict,
      r.plainForward.check.verdict,
      r.plainPlatformatic.check.verdict,
    ]);
    const result = {
      benchmark: 'normalizer',
      startedAt,
      finishedAt: new Date().toISOString(),
      parameters: {
        quick: options.quick,
        records,
        range: added,
        rounds: options.rounds,
        topicPrefix: topics.prefix,
        rawTopics: topics.raw,
        startOffsets: start,
        endOffsets: end,
        order:
          'normalizer, plain-forward (kafkajs), plain-forward-platformatic in every round; each a child process with a new consumer group',
        pollIntervalMs: POLL_INTERVAL_MS,
        method: 'bench/README.md (normalizer) at machine.gitCommit',
        prefillResult: fill,
        normalizerEnv: NORMALIZER_ENV,
        infrastructure: infra,
        goals: GOALS,
      },
      machine: report.machineInfo(),
      summary,
      goals: {
        recordsPerSec: summary.normalizer.steadyPerSec >= GOALS.minRecordsPerSec,
        ratio: summary.ratioSteady >= GOALS.minRatio,
      },
      verification: checks.every((v) => v === 'OK') ? 'OK' : 'MISMATCH (see rounds)',
      rounds,
    };
    printReport(result);
    log(`verification: ${result.verification}`);
    report.writeResults('normalizer', result);
    return result;
  } finally {
    await kafka.deleteRunResources(admin, topics.prefix, { registryUrl: infra.schemaRegistryUrl });
    await admin.disconnect().catch(() => {});
  }
}

module.exports = { run };
