/* global fetch, AbortSignal */
'use strict';

/**
 * Kafka helpers of the benchmarks: admin, topic high watermarks, consumer-group offsets (set before a
 * service starts, read back as progress), a progress poller with throughput figures, best-effort cleanup of
 * everything under a run's prefix.
 */
const { setTimeout: sleep } = require('node:timers/promises');
const { Kafka, logLevel } = require('kafkajs');
const { log } = require('./log');
const { assertBenchNames, assertRunPrefix } = require('./topics');
const { round } = require('./stats');

/** A kafkajs client that logs nothing (the bench reports its own errors). */
function quietKafka(brokers, clientId) {
  return new Kafka({ clientId, brokers, logLevel: logLevel.NOTHING });
}

async function connectAdmin(brokers) {
  const admin = quietKafka(brokers, 'ampflow-bench-admin').admin();
  await admin.connect();
  return admin;
}

/** Creates the topics that do not exist yet (existing ones are left as they are). */
async function createTopics(admin, topics, numPartitions) {
  assertBenchNames(topics);
  // Retried: a busy broker may answer a fresh topic's metadata before it knows its leaders ("This server
  // does not host this topic-partition"); creating an existing topic again is a no-op (false).
  for (let attempt = 1; ; attempt++) {
    try {
      await admin.createTopics({
        waitForLeaders: true,
        topics: topics.map((topic) => ({ topic, numPartitions, replicationFactor: -1 })),
      });
      return;
    } catch (err) {
      if (attempt >= 5) throw err;
      await new Promise((resolve) => setTimeout(resolve, 2_000));
    }
  }
}

/** Sum of the high watermarks of `topics` = records ever appended (a missing topic counts 0). */
async function recordCount(admin, topics) {
  assertBenchNames(topics);
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

/** Reads `recordCount` until two reads 500 ms apart agree (records cut off at the end may still land). */
async function settledRecordCount(admin, topics, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  let previous = await recordCount(admin, topics);
  while (Date.now() < deadline) {
    await sleep(500);
    const current = await recordCount(admin, topics);
    if (current === previous) return { count: current, settled: true };
    previous = current;
  }
  return { count: previous, settled: false };
}

/** Per topic, the high watermark of every partition: `{ [topic]: [{ partition, offset }] }`. */
async function endOffsets(admin, topics) {
  assertBenchNames(topics);
  const entries = await Promise.all(
    topics.map(async (topic) => [
      topic,
      (await admin.fetchTopicOffsets(topic)).map((p) => ({ partition: p.partition, offset: p.high })),
    ]),
  );
  return Object.fromEntries(entries);
}

/** Commits `offsets` (from `endOffsets`) for a group that has no members yet, so it starts there. */
async function setGroupOffsets(admin, groupId, offsets) {
  assertBenchNames([groupId, ...Object.keys(offsets)]);
  for (const [topic, partitions] of Object.entries(offsets)) {
    await admin.setOffsets({ groupId, topic, partitions });
  }
}

/** Records between two `endOffsets` readings (what was appended in between, by anyone). */
function rangeSize(start, end) {
  let total = 0;
  for (const [topic, partitions] of Object.entries(end)) {
    const from = new Map(start[topic].map((p) => [p.partition, Number(p.offset)]));
    for (const p of partitions) total += Number(p.offset) - (from.get(p.partition) ?? 0);
  }
  return total;
}

/**
 * Records the group committed past `start` (from `endOffsets`), over every topic and partition; with `end`,
 * only those up to `end` on each partition (what it did of that range, not of records appended later).
 */
async function committedSince(admin, groupId, start, end) {
  assertBenchNames(Object.keys(start));
  const committed = await admin.fetchOffsets({ groupId, topics: Object.keys(start) });
  let total = 0;
  for (const { topic, partitions } of committed) {
    const from = new Map(start[topic].map((p) => [p.partition, Number(p.offset)]));
    const to = new Map((end?.[topic] ?? []).map((p) => [p.partition, Number(p.offset)]));
    for (const p of partitions) {
      const offset = Number(p.offset);
      if (offset >= 0)
        total += Math.min(offset, to.get(p.partition) ?? Infinity) - (from.get(p.partition) ?? 0);
    }
  }
  return total;
}

/**
 * Polls `count()` every `intervalMs` until it reaches `target` (or `timeoutMs`). Times are ms since `t0`
 * (process.hrtime based). Returns the first sample with a non-zero count, the sample that reached the
 * target, and every sample. `isFailed()` returning a message ends the poll with that error.
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
 * Throughput figures from a poll: `steady` counts from the first poll that saw progress to the one that saw
 * the target (fixed startup excluded), `total` from t0 to the target.
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

/**
 * Best-effort deletion of everything a run left under its prefix (`bench.<runId>.`, see topics.js): every
 * topic whose name starts with it (the ones the bench created and the ones the services created for it:
 * canonical, dead-letter, sessions and changelog topics), every consumer group, and with `registryUrl` every
 * registry subject (`<topic>-value`, soft then permanent deletion). Nothing else: the prefix is checked, and
 * only names that start with it are deleted, so the platform's topics are never touched.
 */
async function deleteRunResources(admin, prefix, { registryUrl } = {}) {
  assertRunPrefix(prefix);
  const own = (names) => names.filter((name) => typeof name === 'string' && name.startsWith(prefix));
  const deleted = { topics: 0, groups: 0, subjects: 0 };
  try {
    const groups = own((await admin.listGroups()).groups.map((g) => g.groupId));
    if (groups.length > 0) await admin.deleteGroups(groups);
    deleted.groups = groups.length;
  } catch (err) {
    log(`could not delete the bench consumer groups: ${err.message}`);
  }
  try {
    const topics = own(await admin.listTopics());
    if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 30_000 });
    deleted.topics = topics.length;
  } catch (err) {
    log(`could not delete the bench topics: ${err.message}`);
  }
  if (registryUrl) deleted.subjects = await deleteSubjects(registryUrl, prefix);
  log(
    `cleanup of ${prefix}*: deleted ${deleted.topics} topics, ${deleted.groups} consumer groups` +
      `${registryUrl ? `, ${deleted.subjects} registry subjects` : ''}`,
  );
  return deleted;
}

/** Soft then permanent deletion of the registry subjects that start with `prefix`; returns how many went. */
async function deleteSubjects(registryUrl, prefix) {
  assertRunPrefix(prefix);
  const base = registryUrl.replace(/\/$/, '');
  const request = (url, method = 'GET') => fetch(url, { method, signal: AbortSignal.timeout(5_000) });
  let subjects;
  try {
    const res = await request(`${base}/subjects`);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    subjects = (await res.json()).filter((s) => typeof s === 'string' && s.startsWith(prefix));
  } catch (err) {
    log(`could not list the registry subjects: ${err.message}`);
    return 0;
  }
  let deleted = 0;
  for (const subject of subjects) {
    const url = `${base}/subjects/${encodeURIComponent(subject)}`;
    try {
      if ((await request(url, 'DELETE')).ok) deleted += 1;
      await request(`${url}?permanent=true`, 'DELETE').catch(() => undefined);
    } catch {
      // best effort
    }
  }
  return deleted;
}

module.exports = {
  quietKafka,
  connectAdmin,
  createTopics,
  recordCount,
  settledRecordCount,
  endOffsets,
  setGroupOffsets,
  committedSince,
  rangeSize,
  pollUntil,
  throughput,
  deleteRunResources,
};
