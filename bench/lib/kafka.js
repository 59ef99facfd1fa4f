/* global fetch, AbortSignal */
'use strict';

/**
 * Helpers shared by the in-process Kafka benchmarks (normalizer, aggregator): machine info, results files,
 * topic high watermarks, a progress poller, histogram quantiles and best-effort cleanup.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { setTimeout: sleep } = require('node:timers/promises');
const { Kafka, logLevel } = require('kafkajs');
const { commandOutput } = require('./processes');
const { findPidByName, readPidFile } = require('./cpu');
const { round } = require('./stats');

const ROOT = path.resolve(__dirname, '..', '..');
const RESULTS_DIR = path.join(__dirname, '..', 'results');

function log(message) {
  process.stdout.write(`[bench] ${message}\n`);
}

/** The machine and versions a result was measured with; `versions` adds tool versions (name -> version). */
function machineInfo(versions = { kafkajsVersion: require('kafkajs/package.json').version }) {
  const cpus = os.cpus();
  const gitCommit = commandOutput('git', ['rev-parse', 'HEAD'], { cwd: ROOT, timeoutMs: 5_000 })?.trim();
  const gitStatus = commandOutput('git', ['status', '--porcelain'], { cwd: ROOT, timeoutMs: 10_000 });
  return {
    hostname: os.hostname(),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpuCount: cpus.length,
    availableParallelism: os.availableParallelism?.() ?? cpus.length,
    cpuModel: cpus[0]?.model,
    totalMemoryMiB: Math.round(os.totalmem() / 2 ** 20),
    loadAverageAtStart: os.loadavg().map((v) => round(v, 2)),
    nodeVersion: process.version,
    ...versions,
    gitCommit,
    gitWorktreeDirty: gitStatus === undefined ? undefined : gitStatus.trim().length > 0,
  };
}

/** Writes `<name>-<timestamp>.json` and `<name>-latest.json` in bench/results; returns the first path. */
function writeResults(name, report) {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${name}-${report.startedAt.replace(/[:.]/g, '-')}.json`);
  const text = `${JSON.stringify(report, null, 2)}\n`;
  fs.writeFileSync(file, text);
  fs.writeFileSync(path.join(RESULTS_DIR, `${name}-latest.json`), text);
  return file;
}

function schemaRegistryUrl(env = process.env) {
  return env.SCHEMA_REGISTRY_URL || 'http://127.0.0.1:8081/apis/ccompat/v7';
}

function brokerList(infra) {
  return infra.kafkaBrokers.split(/[\s,]+/).filter(Boolean);
}

async function connectAdmin(brokers) {
  const admin = new Kafka({ clientId: 'ampflow-bench-admin', brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  return admin;
}

async function createTopics(admin, topics, numPartitions) {
  await admin.createTopics({
    waitForLeaders: true,
    topics: topics.map((topic) => ({ topic, numPartitions, replicationFactor: -1 })),
  });
}

/** Sum of the high watermarks of `topics` (a topic that does not exist yet counts 0). */
async function recordCount(admin, topics) {
  const counts = await Promise.all(
    topics.map((topic) =>
      admin
        .fetchTopicOffsets(topic)
        .then((partitions) => partitions.reduce((sum, p) => sum + Number(p.high), 0))
        .catch(() => 0),
    ),
  );
  return counts.reduce((a, b) => a + b, 0);
}

/**
 * Polls `count()` every `intervalMs` until it reaches `target` (or `timeoutMs`). Times are ms since
 * `t0` (process.hrtime based). Returns the first sample with a non-zero count, the sample that reached the
 * target, and every sample.
 */
async function pollUntil(count, target, { t0, intervalMs = 200, timeoutMs, isFailed = () => undefined }) {
  const since = () => Number(process.hrtime.bigint() - t0) / 1e6;
  const samples = [];
  let first;
  const deadline = since() + timeoutMs;
  for (;;) {
    const value = await count();
    const at = since();
    samples.push({ atMs: round(at, 1), count: value });
    if (first === undefined && value > 0) first = { atMs: at, count: value };
    if (value >= target) return { first, done: { atMs: at, count: value }, samples, timedOut: false };
    const failure = isFailed();
    if (failure) throw new Error(failure);
    if (at > deadline) return { first, done: { atMs: at, count: value }, samples, timedOut: true };
    await sleep(intervalMs);
  }
}

/**
 * Throughput figures from a poll: `steady` counts from the first poll that saw output to the one that saw
 * the target (fixed startup excluded), `total` from t0 (the app's start() call) to the target.
 */
function throughput(poll, target) {
  const { first, done } = poll;
  const steadyRecords = done.count - (first?.count ?? 0);
  const steadySeconds = first ? (done.atMs - first.atMs) / 1000 : NaN;
  return {
    records: done.count,
    target,
    timedOut: poll.timedOut,
    firstOutputAtS: first ? round(first.atMs / 1000, 3) : undefined,
    firstOutputCount: first?.count,
    doneAtS: round(done.atMs / 1000, 3),
    steadyRecords,
    steadySeconds: round(steadySeconds, 3),
    steadyPerSec: steadySeconds > 0 ? round(steadyRecords / steadySeconds, 0) : NaN,
    totalPerSec: round(done.count / (done.atMs / 1000), 0),
  };
}

/** PIDs of the local stack's processes, for CPU accounting (undefined when not found). */
function stackPids(infra) {
  const local = infra.source !== 'environment';
  return {
    kafka: local ? readPidFile(path.join(ROOT, '.ampflow', 'pids', 'kafka.pid')) : undefined,
    redis: findPidByName('redis-server'),
  };
}

/** Best-effort deletion of the topics a run created (the stack is shared). */
async function deleteTopics(admin, topics) {
  if (topics.length === 0) return;
  try {
    const existing = new Set(await admin.listTopics());
    const present = topics.filter((t) => existing.has(t));
    if (present.length > 0) await admin.deleteTopics({ topics: present, timeout: 30_000 });
    log(`deleted ${present.length} bench topics`);
  } catch (err) {
    log(`could not delete the bench topics: ${err.message}`);
  }
}

/** Best-effort soft deletion of registry subjects the run registered. */
async function deleteSubjects(registryUrl, subjects) {
  let deleted = 0;
  for (const subject of subjects) {
    try {
      const res = await fetch(`${registryUrl.replace(/\/$/, '')}/subjects/${encodeURIComponent(subject)}`, {
        method: 'DELETE',
        signal: AbortSignal.timeout(5_000),
      });
      if (res.ok) deleted += 1;
    } catch {
      // best effort
    }
  }
  log(`deleted ${deleted}/${subjects.length} bench registry subjects`);
}

/**
 * Quantile of a histogram's observations, linearly interpolated inside the bucket that holds it (the
 * Prometheus histogram_quantile method). `buckets`: ascending cumulative `{ le, count }`.
 */
function interpolatedQuantile(buckets, q) {
  const total = buckets.at(-1)?.count ?? 0;
  if (total === 0) return undefined;
  const rank = q * total;
  let previousLe = 0;
  let previousCount = 0;
  for (const { le, count } of buckets) {
    if (count >= rank) {
      if (le === Infinity) return previousLe; // above the last finite bound: report that bound
      const inBucket = count - previousCount;
      return inBucket === 0 ? le : previousLe + ((le - previousLe) * (rank - previousCount)) / inBucket;
    }
    previousLe = le;
    previousCount = count;
  }
  return previousLe;
}

module.exports = {
  ROOT,
  RESULTS_DIR,
  log,
  machineInfo,
  writeResults,
  schemaRegistryUrl,
  brokerList,
  connectAdmin,
  createTopics,
  recordCount,
  pollUntil,
  throughput,
  stackPids,
  deleteTopics,
  deleteSubjects,
  interpolatedQuantile,
};
