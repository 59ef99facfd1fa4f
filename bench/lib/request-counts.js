'use strict';

/**
 * Kafka requests and Redis round trips per service, from `tools/kafka-request-counter.js` preloaded into each
 * service process (`nodeOptions()` gives the NODE_OPTIONS; `snapshot()` asks every process for its counts
 * with SIGUSR2 and reads them; `diff()` the deltas of a window), and the Redis server's own command count
 * (`INFO stats`, every client of that Redis, so other users of a shared Redis add to it).
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { setTimeout: sleep } = require('node:timers/promises');

const COUNTER = path.join(__dirname, '..', 'tools', 'kafka-request-counter.js');

/** A fresh directory for the counts of one run's processes. */
function countsDir(runId) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `bench-counts-${runId}-`));
}

/** NODE_OPTIONS and BENCH_COUNTS_DIR for a service process (keeps NODE_OPTIONS the bench got). */
function counterEnv(dir) {
  const inherited = process.env.NODE_OPTIONS ? `${process.env.NODE_OPTIONS} ` : '';
  return { NODE_OPTIONS: `${inherited}--require=${COUNTER}`, BENCH_COUNTS_DIR: dir };
}

function readCounts(dir, pid) {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, `${pid}.json`), 'utf8'));
  } catch {
    return undefined;
  }
}

/** Signals every process (name -> pid) and waits (up to 2 s) for a newer dump from each. */
async function snapshot(dir, pids) {
  const before = Object.fromEntries(
    Object.entries(pids).map(([n, pid]) => [n, readCounts(dir, pid)?.seq ?? 0]),
  );
  for (const pid of Object.values(pids)) {
    try {
      process.kill(pid, 'SIGUSR2');
    } catch {
      // gone: no counts
    }
  }
  const out = {};
  const deadline = Date.now() + 2_000;
  for (const [name, pid] of Object.entries(pids)) {
    for (;;) {
      const c = readCounts(dir, pid);
      if (c && c.seq > before[name]) {
        out[name] = c;
        break;
      }
      if (Date.now() > deadline) break;
      await sleep(20);
    }
  }
  return out;
}

/** Per service: Kafka requests per API and Redis counts over the window between two snapshots. */
function diff(a, b) {
  const out = {};
  for (const [name, end] of Object.entries(b)) {
    const start = a[name];
    if (!start) continue;
    const kafka = {};
    for (const [api, n] of Object.entries(end.kafka)) {
      const d = n - (start.kafka[api] ?? 0);
      if (d > 0) kafka[api] = d;
    }
    const redis = {};
    for (const [k, n] of Object.entries(end.redis)) redis[k] = n - (start.redis[k] ?? 0);
    out[name] = { kafka, redis };
  }
  return out;
}

/** The columns of the Kafka table: the APIs named in the issue first, then whatever else was sent. */
const MAIN_APIS = ['Produce', 'Fetch', 'OffsetCommit', 'Heartbeat', 'Metadata'];

/** Total commands processed by the Redis server (all its clients). */
async function redisServerCommands(redis) {
  try {
    const info = await redis.info('stats');
    return Number(info.match(/total_commands_processed:(\d+)/)?.[1]);
  } catch {
    return undefined;
  }
}

module.exports = { countsDir, counterEnv, snapshot, diff, MAIN_APIS, redisServerCommands };
