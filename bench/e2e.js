'use strict';
/* global structuredClone */

/**
 * End-to-end latency benchmark: the four services as built processes on the run's prefix (ingress ->
 * normalizer -> session aggregator -> notifier), signed Telematica webhooks at a fixed rate into the ingress,
 * each vehicle a charging scenario (plugged in, charging x 3, stopped), and one sink endpoint subscribed to
 * `charging_session.*`. Latency: from the ingress's 200 for the reading that starts (first charging) or ends
 * (stopped) a session to the sink receiving `charging_session.started` / `.ended` for that vehicle. See
 * bench/README.md.
 */
const { setTimeout: sleep } = require('node:timers/promises');
const path = require('node:path');
const { randomUUID } = require('node:crypto');
const { Pool } = require('undici');
const { SchemaRegistry } = require('@kafkajs/confluent-schema-registry');
const { svixHeaders } = require('@ampflow/testing');
const fs = require('node:fs');
const Redis = require('ioredis');
const { jitCpuSeconds, startCpuSample, startMemorySample } = require('./lib/cpu');
const { prepare, stackPids } = require('./lib/infra');
const kafka = require('./lib/kafka');
const { NOTIFIER_MAIN, adminToken, notifierEnv, registerEndpoint } = require('./lib/notifier-service');
const { deleteRedisNamespace } = require('./lib/redis');
const { startTarget, stopTarget, waitForHttpOk, withChildren } = require('./lib/processes');
const {
  MAIN_APIS,
  counterEnv,
  countsDir,
  diff,
  redisServerCommands,
  snapshot,
} = require('./lib/request-counts');
const report = require('./lib/report');
const { startSinks } = require('./lib/sinks');
const { percentile, round } = require('./lib/stats');
const { assertOwn, runPrefix, runTopics } = require('./lib/topics');
const { BENCH_SECRETS, loadWebhookFixtures } = require('./lib/webhook-requests');
const { stageShares } = require('./tools/profile-summary');

const { ROOT, log } = report;
const MAIN = (service) => path.join(ROOT, 'services', service, 'dist', 'main.js');
const PARTITIONS = 6;
const READY_TIMEOUT_MS = 90_000;
const STEP_MS = 1_000;
const WARMUP_S = 3;
/** Longest extra warm-up while the broker's JIT compilers are busy (see warmBroker). */
const BROKER_WARMUP_MAX_S = 180;
/** The targets of issue 16 (see targetsOf). */
const TARGETS = {
  at50: { maxServicesAndBrokerCores: 0.25, p99BelowMs: 50 },
  at500: { maxMachineCores: 1.0, maxUsPerWebhook: 2_000, maxP99Ms: 150 },
  at1500: { maxP99Ms: 500 },
  idleMaxCores: 0.01,
  maxServiceRssMiB: 150,
};
/** One vehicle's requests: [fixture, currentState, isCharging, isPlugged]; step 1 starts, step 4 ends. */
const SCENARIO = [
  ['vehicle-plug-status', 'Plugged', false, true],
  ['vehicle-charging-status', 'Charging', true, true],
  ['vehicle-charging-status', 'Charging', true, true],
  ['vehicle-charging-status', 'Charging', true, true],
  ['vehicle-charging-status', 'Stopped', false, true],
];
const START_STEP = 1;
const END_STEP = 4;

function templates() {
  const { telematica } = loadWebhookFixtures();
  const byName = (name) => {
    const found = telematica.find((f) => f.name.endsWith(`/${name}.json`) || f.name.endsWith(`${name}.json`));
    if (!found) throw new Error(`fixture telematica/${name}.json not found`);
    return JSON.parse(found.body.toString('utf8'));
  };
  return {
    'vehicle-plug-status': byName('vehicle-plug-status'),
    'vehicle-charging-status': byName('vehicle-charging-status'),
  };
}

/** The signed request of a vehicle's step: the fixture with its id, state, SOC and `lastUpdated` = now. */
function requestOf(tpl, vehicleId, step, now) {
  const [fixture, currentState, isCharging, isPlugged] = SCENARIO[step];
  const body = structuredClone(tpl[fixture]);
  const iso = new Date(now).toISOString();
  body.vehicleId = vehicleId;
  body.currentState = currentState;
  const battery = body.vehicleState.batteryState;
  battery.isCharging = isCharging;
  battery.isPlugged = isPlugged;
  battery.soc = 40 + step * 5;
  battery.lastUpdated = iso;
  body.vehicleState.location.lastUpdated = iso;
  body.vehicleState.odo.lastUpdated = iso;
  const text = JSON.stringify(body);
  const id = `msg_${randomUUID().replace(/-/g, '')}`;
  return {
    body: text,
    headers: svixHeaders(text, BENCH_SECRETS.telematicaWebhookSecret, { id, timestamp: new Date(now) }),
  };
}

/**
 * Sends rate x seconds requests: rate x seconds / 5 vehicles, started evenly over the first `seconds` minus
 * one scenario, each vehicle's steps `stepMs` apart (1 s; less on runs shorter than 10 s), so the rate ramps up
 * and down over one scenario at both ends and is a little above `rate` in between. A step is sent only after
 * the previous one of that vehicle was answered (per-vehicle order). Returns every vehicle with the time each
 * step was sent (= its `lastUpdated`, the reading's occurredAt) and answered 200.
 */
async function drive({ pool, tpl, rate, seconds, idPrefix }) {
  const stepMs = Math.min(STEP_MS, (seconds * 1000) / 10);
  const count = Math.max(1, Math.round((rate * seconds) / SCENARIO.length));
  const spacingMs = (seconds * 1000 - (SCENARIO.length - 1) * stepMs) / count;
  const events = [];
  for (let v = 0; v < count; v++) {
    for (let s = 0; s < SCENARIO.length; s++) events.push({ at: v * spacingMs + s * stepMs, v, s });
  }
  events.sort((a, b) => a.at - b.at);
  const vehicles = Array.from({ length: count }, (_, v) => ({
    providerVehicleId: `${idPrefix}-${v}`,
    sentAt: new Array(SCENARIO.length),
    acceptedAt: new Array(SCENARIO.length),
    status: new Array(SCENARIO.length),
    chain: Promise.resolve(),
  }));
  const stats = { sent: 0, ok: 0, failed: 0, errors: {}, lateMsMax: 0 };
  const t0 = Date.now();
  const send = async (vehicle, step) => {
    const now = Date.now();
    vehicle.sentAt[step] = now;
    const { body, headers } = requestOf(tpl, vehicle.providerVehicleId, step, now);
    stats.sent += 1;
    try {
      const res = await pool.request({ path: '/webhooks/telematica', method: 'POST', headers, body });
      await res.body.dump();
      vehicle.status[step] = res.statusCode;
      if (res.statusCode === 200) {
        vehicle.acceptedAt[step] = Date.now();
        stats.ok += 1;
      } else {
        stats.failed += 1;
        stats.errors[res.statusCode] = (stats.errors[res.statusCode] ?? 0) + 1;
      }
    } catch (err) {
      stats.failed += 1;
      stats.errors[err.code ?? err.message] = (stats.errors[err.code ?? err.message] ?? 0) + 1;
    }
  };
  for (const e of events) {
    const wait = t0 + e.at - Date.now();
    if (wait > 0) await sleep(wait);
    else stats.lateMsMax = Math.max(stats.lateMsMax, -wait);
    const vehicle = vehicles[e.v];
    vehicle.chain = vehicle.chain.then(() => send(vehicle, e.s));
  }
  await Promise.all(vehicles.map((v) => v.chain));
  stats.seconds = round((Date.now() - t0) / 1000, 2);
  stats.stepMs = stepMs;
  stats.perSec = round(stats.sent / stats.seconds, 1);
  return { vehicles, stats };
}

/**
 * Reads the telemetry and sessions topics once, from the beginning up to their end offsets at the call (after a
 * measured window has drained), decoding every record, to split the latency into hops by the Kafka record
 * timestamps (set by each service's producer when it hands the record over): telemetry by
 * `<vehicleId>|<occurredAt>`, sessions by `<vehicleId>|<at>|<kind>` (startedAt for STARTED, endedAt for ENDED:
 * the occurredAt of the reading that caused it).
 *
 * It reads between windows, never during one, and never commits (a fresh group per read): a tap fetching and
 * committing beside the services would add its own requests to the broker's CPU that the window measures (it
 * did: about one fetch and one offset commit per record at 50/s).
 */
async function readTap({ brokers, registryUrl, admin, groupId, topics }) {
  const registry = new SchemaRegistry({ host: registryUrl });
  const times = new Map();
  /** How often each key was seen (a record read twice by the tap is its own doing). */
  const seen = new Map();
  const note = (key, ts) => {
    if (!times.has(key)) times.set(key, ts);
    seen.set(key, (seen.get(key) ?? 0) + 1);
  };
  const ends = await kafka.endOffsets(admin, [topics.telemetry, topics.sessions]);
  const remaining = new Set();
  for (const [topic, partitions] of Object.entries(ends))
    for (const p of partitions) if (Number(p.offset) > 0) remaining.add(`${topic}:${p.partition}`);
  const endOf = (topic, partition) => Number(ends[topic].find((p) => p.partition === partition).offset);
  if (remaining.size === 0) return { times, seen };
  const consumer = kafka.quietKafka(brokers, 'bench-e2e-tap').consumer({ groupId, maxWaitTimeInMs: 100 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topics.telemetry, topics.sessions], fromBeginning: true });
    let done;
    const finished = new Promise((resolve) => (done = resolve));
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const end = endOf(batch.topic, batch.partition);
        for (const message of batch.messages) {
          if (Number(message.offset) >= end) break;
          const ts = Number(message.timestamp);
          try {
            const value = await registry.decode(message.value);
            if (batch.topic === topics.telemetry) note(`${value.vehicleId}|${value.occurredAt}`, ts);
            else if (value.change === 'STARTED') note(`${value.vehicleId}|${value.startedAt}|started`, ts);
            else if (value.change === 'ENDED') note(`${value.vehicleId}|${value.endedAt}|ended`, ts);
          } catch {
            // not ours to judge: the services dead-letter what they cannot read
          }
        }
        const last = batch.messages.at(-1);
        if (last && Number(last.offset) + 1 >= end) {
          remaining.delete(`${batch.topic}:${batch.partition}`);
          if (remaining.size === 0) done();
        }
      },
    });
    const timedOut = await Promise.race([finished.then(() => false), sleep(120_000).then(() => true)]);
    if (timedOut) log(`tap: ${remaining.size} partitions not read to their end within 120 s (hops incomplete)`);
  } finally {
    await consumer.disconnect().catch(() => {});
  }
  return { times, seen };
}

function summary(values) {
  const sorted = Float64Array.from(values).sort();
  return {
    samples: sorted.length,
    p50Ms: percentile(sorted, 50),
    p90Ms: percentile(sorted, 90),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted.length ? sorted[sorted.length - 1] : NaN,
  };
}

/**
 * Matches started/ended webhooks (by vehicle id and type) to the readings that caused them: end-to-end
 * latency (ingress 200 -> sink), accounting, and with the tap's record times the hops.
 */
function matchEvents(vehicles, captured, tapTimes, tapSeen) {
  const byVehicle = new Map();
  const ours = new Set(vehicles.map((v) => `telematica:${v.providerVehicleId}`));
  const byType = {};
  for (const c of captured) {
    const vid = c.data?.vehicleId;
    if (!vid || !ours.has(vid)) continue;
    byType[c.type] = (byType[c.type] ?? 0) + 1;
    let list = byVehicle.get(vid);
    if (!list) byVehicle.set(vid, (list = []));
    list.push(c);
  }
  const latencies = { started: [], ended: [] };
  const records = {
    telemetry: { expected: 0, found: 0, missing: 0, duplicates: 0, unacknowledgedButPublished: 0 },
    sessionRecords: { expected: 0, found: 0, missing: 0, duplicates: 0 },
  };
  const webhookIds = new Map();
  for (const list of byVehicle.values()) {
    for (const c of list) if (c.id) webhookIds.set(c.id, (webhookIds.get(c.id) ?? 0) + 1);
  }
  const repeatedWebhookIds = [...webhookIds.values()].reduce((sum, n) => sum + (n - 1), 0);
  const hops = { ingress: [], normalizer: [], aggregator: [], notifier: [] };
  const counts = {
    started: { expected: 0, received: 0, duplicates: 0 },
    ended: { expected: 0, received: 0, duplicates: 0 },
  };
  for (const v of vehicles) {
    const vid = `telematica:${v.providerVehicleId}`;
    const events = byVehicle.get(vid) ?? [];
    if (tapSeen) {
      for (let step = 0; step < SCENARIO.length; step++) {
        if (v.sentAt[step] === undefined) continue;
        const n = tapSeen.get(`${vid}|${v.sentAt[step]}`) ?? 0;
        if (v.acceptedAt[step] === undefined) {
          if (n > 0) records.telemetry.unacknowledgedButPublished += 1;
          continue;
        }
        records.telemetry.expected += 1;
        if (n === 0) records.telemetry.missing += 1;
        else records.telemetry.found += 1;
        records.telemetry.duplicates += Math.max(0, n - 1);
      }
      for (const [kind, step] of [
        ['started', START_STEP],
        ['ended', END_STEP],
      ]) {
        if (v.acceptedAt[step] === undefined) continue;
        records.sessionRecords.expected += 1;
        const n = tapSeen.get(`${vid}|${v.sentAt[step]}|${kind}`) ?? 0;
        if (n === 0) records.sessionRecords.missing += 1;
        else records.sessionRecords.found += 1;
        records.sessionRecords.duplicates += Math.max(0, n - 1);
      }
    }
    for (const [kind, step] of [
      ['started', START_STEP],
      ['ended', END_STEP],
    ]) {
      if (v.acceptedAt[step] === undefined) continue;
      counts[kind].expected += 1;
      const matching = events.filter((e) => e.type === `charging_session.${kind}`);
      if (matching.length === 0) continue;
      counts[kind].received += 1;
      counts[kind].duplicates += matching.length - 1;
      const at = Math.min(...matching.map((e) => e.at));
      latencies[kind].push(at - v.acceptedAt[step]);
      const telemetryTs = tapTimes?.get(`${vid}|${v.sentAt[step]}`);
      const sessionTs = tapTimes?.get(`${vid}|${v.sentAt[step]}|${kind}`);
      hops.ingress.push(v.acceptedAt[step] - v.sentAt[step]);
      if (telemetryTs !== undefined) hops.normalizer.push(telemetryTs - v.acceptedAt[step]);
      if (telemetryTs !== undefined && sessionTs !== undefined) hops.aggregator.push(sessionTs - telemetryTs);
      if (sessionTs !== undefined) hops.notifier.push(at - sessionTs);
    }
  }
  return {
    counts,
    records,
    webhooks: { distinctIds: webhookIds.size, repeatedIds: repeatedWebhookIds },
    started: summary(latencies.started),
    ended: summary(latencies.ended),
    all: summary([...latencies.started, ...latencies.ended]),
    hops: Object.fromEntries(Object.entries(hops).map(([k, values]) => [k, summary(values)])),
    byType,
  };
}

/**
 * Polls the sink until every started/ended webhook of `vehicles` arrived; gives up after 30 s without a new
 * one or at `deadline`. Returns whether all arrived.
 */
async function waitForMatch(sinks, vehicles, deadline = Infinity) {
  let last = -1;
  let lastChange = Date.now();
  for (;;) {
    const { captured } = await sinks.request('report', { mode: 'e' });
    const m = matchEvents(vehicles, captured);
    const got = m.counts.started.received + m.counts.ended.received;
    if (got >= m.counts.started.expected + m.counts.ended.expected) return true;
    if (got !== last) {
      last = got;
      lastChange = Date.now();
    }
    if (Date.now() - lastChange > 30_000 || Date.now() > deadline) return false;
    await sleep(500);
  }
}

async function startService(children, name, script, env, nodeArgs = []) {
  const t = await startTarget(name, script, { env, children, nodeArgs });
  await waitForHttpOk(t.handle, `${t.baseUrl}/readyz`, READY_TIMEOUT_MS);
  return t;
}

/**
 * One measured window over every process (name -> pid): CPU from /proc (cores, seconds), memory (sampled
 * VmRSS peak, VmHWM at the end), Kafka requests and Redis round trips per service from the preloaded counter,
 * and the Redis server's command count. `stop()` returns all of it.
 */
async function startWindow({ pids, services, countsDir, redis }) {
  const jitBefore = jitCpuSeconds(pids.kafka);
  const countsBefore = await snapshot(countsDir, services);
  const redisBefore = await redisServerCommands(redis);
  const cpu = startCpuSample(pids);
  const memory = startMemorySample(pids);
  return {
    async stop() {
      const usage = cpu.stop();
      const mem = memory.stop();
      const jitAfter = jitCpuSeconds(pids.kafka);
      const redisAfter = await redisServerCommands(redis);
      const countsAfter = await snapshot(countsDir, services);
      return {
        wallSeconds: usage.wallSeconds,
        exactWallSeconds: usage.exactWallSeconds,
        cores: usage.cores,
        cpuSeconds: usage.seconds,
        /** Of the broker's CPU, its JIT compilers' (counted in its figures too). */
        kafkaJitCores:
          jitBefore === undefined || jitAfter === undefined
            ? undefined
            : round((jitAfter - jitBefore) / usage.exactWallSeconds, 3),
        memory: mem,
        requests: diff(countsBefore, countsAfter),
        redisServerCommands:
          redisBefore === undefined || redisAfter === undefined ? undefined : redisAfter - redisBefore,
      };
    },
  };
}

/** Processes summed as "whole machine": every process of the platform, the load generator and the sinks. */
const PROCESS_COLUMNS = [
  ['ingress', 'ingress'],
  ['normalizer', 'normalizer'],
  ['aggregator', 'aggregator'],
  ['notifier', 'notifier'],
  ['kafka', 'Kafka'],
  ['registry', 'registry'],
  ['redis', 'Redis'],
  ['loadGenerator', 'load gen'],
  ['sinks', 'sinks'],
];
const SERVICES = ['ingress', 'normalizer', 'aggregator', 'notifier'];

/** Derived per-row figures: µs of CPU per webhook per process, whole-machine sums, the targets. */
function derive(row) {
  const w = row.window;
  const webhooks = row.load?.ok ?? 0;
  const sum = (names) => names.reduce((acc, n) => acc + (w.cpuSeconds[n] ?? 0), 0);
  const all = PROCESS_COLUMNS.map(([k]) => k);
  const coresOf = (names) => round(sum(names) / w.exactWallSeconds, 3);
  row.cores = Object.fromEntries(
    all.map((k) => [
      k,
      w.cpuSeconds[k] === undefined ? undefined : round(w.cpuSeconds[k] / w.exactWallSeconds, 3),
    ]),
  );
  row.cores.servicesAndBroker = coresOf([...SERVICES, 'kafka']);
  row.cores.wholeMachine = coresOf(all);
  row.cores.machineBusy = w.cores.machineBusy;
  row.cores.everythingElse = round((w.cores.machineBusy ?? NaN) - row.cores.wholeMachine, 2);
  row.usPerWebhook = webhooks
    ? Object.fromEntries(
        [...all, 'wholeMachine'].map((k) => [
          k,
          round(((k === 'wholeMachine' ? sum(all) : (w.cpuSeconds[k] ?? NaN)) / webhooks) * 1e6, 0),
        ]),
      )
    : undefined;
  row.peakRssMiB = Object.fromEntries(
    all.map((k) => [k, SERVICES.includes(k) ? w.memory[k]?.hwmMiB : w.memory[k]?.peakRssMiB]),
  );
  row.targets = targetsOf(row);
  return row;
}

/** The targets that apply to a row: name -> { ok, detail }. */
function targetsOf(row) {
  const t = {};
  const p99 = row.match ? Math.max(row.match.started.p99Ms, row.match.ended.p99Ms) : undefined;
  const svcRss = SERVICES.map((k) => row.peakRssMiB[k]);
  t.rss = {
    ok: svcRss.every((v) => v !== undefined && v <= TARGETS.maxServiceRssMiB),
    detail: `every service peak RSS <= ${TARGETS.maxServiceRssMiB} MiB (max ${Math.max(...svcRss.map((v) => v ?? NaN))})`,
  };
  if (row.idle) {
    const max = Math.max(...SERVICES.map((k) => row.cores[k] ?? NaN));
    t.idle = {
      ok: max <= TARGETS.idleMaxCores,
      detail: `each service <= ${TARGETS.idleMaxCores} core idle (max ${max})`,
    };
    return t;
  }
  t.accounted = { ok: row.accounted, detail: 'every event accounted for, no duplicates' };
  // A rate the load generator could not send, or the platform could not keep up with, meets no CPU target:
  // its window is stretched and its cores say nothing about that rate.
  const sustained = row.keptUp
    ? ''
    : `; rate NOT sustained: sent ${row.load.perSec}/s, window ${row.window.wallSeconds} s`;
  if (row.rate === 50) {
    t.cpu50 = {
      ok: row.keptUp && row.cores.servicesAndBroker <= TARGETS.at50.maxServicesAndBrokerCores,
      detail: `4 services + broker <= ${TARGETS.at50.maxServicesAndBrokerCores} core (${row.cores.servicesAndBroker}${sustained})`,
    };
    t.p99at50 = { ok: p99 < TARGETS.at50.p99BelowMs, detail: `p99 < ${TARGETS.at50.p99BelowMs} ms (${p99})` };
  }
  if (row.rate === 500) {
    t.cpu500 = {
      ok: row.keptUp && row.cores.wholeMachine <= TARGETS.at500.maxMachineCores,
      detail: `whole machine <= ${TARGETS.at500.maxMachineCores} core (${row.cores.wholeMachine}${sustained})`,
    };
    t.usPerWebhook500 = {
      ok: row.keptUp && row.usPerWebhook.wholeMachine <= TARGETS.at500.maxUsPerWebhook,
      detail: `<= ${TARGETS.at500.maxUsPerWebhook} µs CPU per webhook (${row.usPerWebhook.wholeMachine})`,
    };
    t.p99at500 = {
      ok: p99 <= TARGETS.at500.maxP99Ms,
      detail: `p99 <= ${TARGETS.at500.maxP99Ms} ms (${p99})`,
    };
  }
  if (row.rate >= 1500) {
    t.sustained = {
      ok: row.keptUp && p99 <= TARGETS.at1500.maxP99Ms && row.accounted,
      detail: `sustained (sent at >= 95 % of the rate, drained), p99 <= ${TARGETS.at1500.maxP99Ms} ms (${p99}), all accounted`,
    };
  }
  return t;
}

function fmt(v, digits = 2) {
  if (v === undefined || v === null || Number.isNaN(v)) return '-';
  return typeof v === 'number' ? String(round(v, digits)) : String(v);
}

/** "all met" or "NOT met: <names>" for a row (the detail is in the targets table). */
function targetsCell(row) {
  const failed = Object.entries(row.targets)
    .filter(([, t]) => !t.ok)
    .map(([n]) => n);
  return failed.length === 0 ? 'all met' : `NOT met: ${failed.join(', ')}`;
}

function rowLabel(row) {
  return row.idle ? `idle ${row.seconds}s` : `${row.rate}/s`;
}

function printReport(r) {
  const rows = r.result.rows;
  log('');
  log(
    `e2e: ${r.machine.cpuCount} CPUs, load average at start ${r.machine.loadAverageAtStart.join(' ')}; ` +
      'CPU from /proc/<pid>/stat (utime+stime, all threads) over each window; the window of a rate runs from ' +
      "its first request until every session webhook arrived (the platform's catch-up included)",
  );
  report.printTable(
    [
      'cores',
      ...PROCESS_COLUMNS.map(([, l]) => l),
      'whole',
      'svc+broker',
      'machine busy',
      'other work',
      'targets',
    ],
    rows.map((row) => [
      rowLabel(row),
      ...PROCESS_COLUMNS.map(([k]) => fmt(row.cores[k], 3)),
      fmt(row.cores.wholeMachine, 3),
      fmt(row.cores.servicesAndBroker, 3),
      fmt(row.cores.machineBusy),
      fmt(row.cores.everythingElse),
      targetsCell(row),
    ]),
  );
  report.printTable(
    ['µs CPU per webhook', ...PROCESS_COLUMNS.map(([, l]) => l), 'whole'],
    rows
      .filter((row) => !row.idle)
      .map((row) => [
        rowLabel(row),
        ...PROCESS_COLUMNS.map(([k]) => fmt(row.usPerWebhook?.[k], 0)),
        fmt(row.usPerWebhook?.wholeMachine, 0),
      ]),
  );
  report.printTable(
    ['peak RSS MiB', ...PROCESS_COLUMNS.map(([, l]) => l)],
    rows.map((row) => [rowLabel(row), ...PROCESS_COLUMNS.map(([k]) => fmt(row.peakRssMiB[k], 0))]),
  );
  log(
    'peak RSS: services VmHWM (peak since start); others the highest VmRSS sampled each second in the window',
  );
  const loadRows = rows.filter((row) => !row.idle);
  report.printTable(
    [
      'rate',
      'sent',
      'sent/s',
      '200',
      'failed',
      'telemetry ok/miss/dup',
      'session rec ok/miss/dup',
      'started exp/rcv/dup',
      'ended exp/rcv/dup',
      'updated rcv',
      'webhook ids repeated',
      'p50 ms',
      'p99 ms',
      'max ms',
      'window s',
    ],
    loadRows.map((row) => {
      const m = row.match;
      const rec = m.records;
      return [
        rowLabel(row),
        row.load.sent,
        row.load.perSec,
        row.load.ok,
        row.load.failed,
        `${rec.telemetry.found}/${rec.telemetry.missing}/${rec.telemetry.duplicates}`,
        `${rec.sessionRecords.found}/${rec.sessionRecords.missing}/${rec.sessionRecords.duplicates}`,
        `${m.counts.started.expected}/${m.counts.started.received}/${m.counts.started.duplicates}`,
        `${m.counts.ended.expected}/${m.counts.ended.received}/${m.counts.ended.duplicates}`,
        m.byType['charging_session.updated'] ?? 0,
        m.webhooks.repeatedIds,
        m.all.p50Ms,
        m.all.p99Ms,
        m.all.maxMs,
        fmt(row.window.wallSeconds, 1),
      ];
    }),
  );
  log(
    "latency: ingress's 200 for the reading that starts / ends a session -> the sink receiving that webhook",
  );
  report.printTable(
    [
      'hops p50/p99 ms',
      'ingress sent->200',
      'normalizer 200->telemetry',
      'aggregator telemetry->session',
      'notifier session->sink',
    ],
    loadRows.map((row) => [
      rowLabel(row),
      ...['ingress', 'normalizer', 'aggregator', 'notifier'].map(
        (k) => `${fmt(row.match.hops[k].p50Ms, 1)}/${fmt(row.match.hops[k].p99Ms, 1)}`,
      ),
    ]),
  );
  // Kafka requests per service and API.
  const apis = new Set(MAIN_APIS);
  for (const row of rows)
    for (const s of Object.values(row.window.requests)) for (const a of Object.keys(s.kafka)) apis.add(a);
  const apiList = [...apis];
  const kafkaRows = [];
  for (const svc of SERVICES) {
    for (const api of [...apiList, 'all']) {
      const perRow = rows.map((row) => {
        const k = row.window.requests[svc]?.kafka;
        if (!k) return undefined;
        return api === 'all' ? Object.values(k).reduce((a, b) => a + b, 0) : (k[api] ?? 0);
      });
      if (api !== 'all' && !MAIN_APIS.includes(api) && perRow.every((n) => !n)) continue;
      kafkaRows.push([
        `${svc} ${api}`,
        ...rows.flatMap((row, i) => {
          const n = perRow[i];
          const perSec = n === undefined ? undefined : n / row.window.exactWallSeconds;
          const perWebhook = n === undefined || row.idle || !row.load.ok ? undefined : n / row.load.ok;
          return row.idle ? [fmt(perSec, 1)] : [fmt(perSec, 1), fmt(perWebhook, 3)];
        }),
      ]);
    }
  }
  const redisRows = [];
  for (const svc of SERVICES) {
    for (const key of ['roundTrips', 'commands']) {
      redisRows.push([
        `${svc} Redis ${key === 'roundTrips' ? 'round trips' : 'commands'}`,
        ...rows.flatMap((row) => {
          const n = row.window.requests[svc]?.redis?.[key];
          const perSec = n === undefined ? undefined : n / row.window.exactWallSeconds;
          const perWebhook = n === undefined || row.idle || !row.load.ok ? undefined : n / row.load.ok;
          return row.idle ? [fmt(perSec, 1)] : [fmt(perSec, 1), fmt(perWebhook, 3)];
        }),
      ]);
    }
  }
  redisRows.push([
    'Redis server, all clients: commands',
    ...rows.flatMap((row) => {
      const n = row.window.redisServerCommands;
      const perSec = n === undefined ? undefined : n / row.window.exactWallSeconds;
      const perWebhook = n === undefined || row.idle || !row.load.ok ? undefined : n / row.load.ok;
      return row.idle ? [fmt(perSec, 1)] : [fmt(perSec, 1), fmt(perWebhook, 3)];
    }),
  ]);
  const headers = [
    'requests (kafkajs, per service)',
    ...rows.flatMap((row) => (row.idle ? [`${rowLabel(row)} /s`] : [`${rowLabel(row)} /s`, 'per webhook'])),
  ];
  report.printTable(headers, [...kafkaRows, ...redisRows]);
  log(
    'Kafka: every request through kafkajs Connection.send (retries included); Redis: a pipeline or MULTI = 1 round trip',
  );
  // Targets.
  report.printTable(
    ['targets (issue 16)', 'met', 'detail'],
    rows.flatMap((row) =>
      Object.entries(row.targets).map(([name, t]) => [
        `${rowLabel(row)} ${name}`,
        report.met(t.ok),
        t.detail,
      ]),
    ),
  );
}

/**
 * Keeps the warm-up load going while the broker's JIT compilers are still busy (more than 0.02 core over 5 s,
 * at most BROKER_WARMUP_MAX_S): a broker started minutes ago spends a third of a core compiling, which a
 * broker that has run for a day does not. The compile CPU of each window is reported anyway (`kafkaJit`).
 */
async function warmBroker({ pool, tpl, sinks, rate, kafkaPid, runId }) {
  const until = Date.now() + BROKER_WARMUP_MAX_S * 1000;
  for (let round = 1; ; round++) {
    const before = jitCpuSeconds(kafkaPid);
    if (before === undefined) return;
    const t0 = Date.now();
    const warm = await drive({ pool, tpl, rate, seconds: 5, idPrefix: `${runId}-wb${round}` });
    const jitCores = (jitCpuSeconds(kafkaPid) - before) / ((Date.now() - t0) / 1000);
    await waitForMatch(sinks, warm.vehicles);
    if (jitCores <= 0.02) {
      log(`broker warm: JIT compilers at ${round3(jitCores)} core after ${round} extra warm-up round(s)`);
      return;
    }
    if (Date.now() > until) {
      log(`broker still compiling after ${BROKER_WARMUP_MAX_S} s of warm-up (${round3(jitCores)} core): measuring anyway`);
      return;
    }
  }
}

const round3 = (n) => Math.round(n * 1000) / 1000;

/** Drives one rate and measures it: CPU, memory, requests over the window (load + catch-up), accounting. */
async function runRate(ctx, rate) {
  const { pool, tpl, sinks, options, runId, windowArgs } = ctx;
  await sinks.request('reset', { mode: 'e' });
  log(`measured: ${rate} webhooks/s for ${options.e2eDurationS} s`);
  const window = await startWindow(windowArgs);
  const measured = await drive({
    pool,
    tpl,
    rate,
    seconds: options.e2eDurationS,
    idPrefix: `${runId}-m${rate}`,
  });
  const driveSeconds = measured.stats.seconds;
  const drained = await waitForMatch(
    sinks,
    measured.vehicles,
    Date.now() + (2 * options.e2eDurationS + 30) * 1000,
  );
  const w = await window.stop();
  await sleep(1_000); // a duplicate would arrive after the last expected webhook
  const final = await sinks.request('report', { mode: 'e' });
  const tap = await ctx.readTap(rate);
  const match = matchEvents(measured.vehicles, final.captured, tap.times, tap.seen);
  const rec = match.records;
  const accounted =
    drained &&
    match.counts.started.received === match.counts.started.expected &&
    match.counts.ended.received === match.counts.ended.expected &&
    match.counts.started.duplicates === 0 &&
    match.counts.ended.duplicates === 0 &&
    match.counts.started.expected === measured.vehicles.length &&
    match.counts.ended.expected === measured.vehicles.length &&
    measured.stats.failed === 0 &&
    rec.telemetry.missing === 0 &&
    rec.telemetry.duplicates === 0 &&
    rec.sessionRecords.missing === 0 &&
    rec.sessionRecords.duplicates === 0 &&
    match.webhooks.repeatedIds === 0;
  const keptUp = drained && measured.stats.perSec >= 0.95 * rate && w.exactWallSeconds <= driveSeconds + 10;
  const row = derive({
    rate,
    seconds: options.e2eDurationS,
    load: measured.stats,
    vehicles: measured.vehicles.length,
    window: w,
    drained,
    keptUp,
    catchUpSeconds: round(w.exactWallSeconds - driveSeconds, 2),
    match,
    accounted,
    signatures: { verified: final.verified, failed: final.verifyFailed },
  });
  log(
    `${rate}/s: sent ${measured.stats.sent} (${measured.stats.perSec}/s), 200 ${measured.stats.ok}, p99 ${match.all.p99Ms} ms, ` +
      `whole machine ${row.cores.wholeMachine} cores, ${row.usPerWebhook?.wholeMachine} µs/webhook, accounted ${accounted}` +
      ` (broker JIT ${w.kafkaJitCores ?? '?'} core, counted in Kafka)`,
  );
  return row;
}

async function runIdle(ctx) {
  const { options, windowArgs } = ctx;
  log(`idle: platform up, no load, ${options.e2eIdleS} s`);
  const window = await startWindow(windowArgs);
  await sleep(options.e2eIdleS * 1000);
  const w = await window.stop();
  return derive({ idle: true, seconds: options.e2eIdleS, window: w });
}

/** The rates to run: BENCH_E2E_RATES, or 500 alone for a profile run that did not name rates. */
function ratesOf(options) {
  const explicit =
    process.env.BENCH_E2E_RATES !== undefined || process.argv.some((a) => a.startsWith('--e2e-rates'));
  const text = options.profile && !explicit ? '500' : options.e2eRates;
  const rates = String(text)
    .split(',')
    .map((x) => Number(x.trim()));
  for (const r of rates) {
    if (!Number.isInteger(r) || r < 1 || r > 5_000)
      throw new Error(`BENCH_E2E_RATES: ${text} (integers in [1, 5000])`);
  }
  return rates;
}

/** Self time per stage of each service's profile (written at its exit by --cpu-prof). */
function profileStages(dir) {
  const out = {};
  for (const svc of SERVICES) {
    const file = path.join(dir, `${svc}.cpuprofile`);
    if (!fs.existsSync(file)) continue;
    out[svc] = {
      file: path.relative(report.ROOT, file),
      ...stageShares(JSON.parse(fs.readFileSync(file, 'utf8'))),
    };
  }
  return out;
}

function printStages(stages) {
  const services = Object.keys(stages);
  if (services.length === 0) return;
  const names = new Map();
  for (const svc of services)
    for (const s of stages[svc].stages) names.set(s.stage, (names.get(s.stage) ?? 0) + s.percent);
  const ordered = [...names.entries()].sort((a, b) => b[1] - a[1]).map(([n]) => n);
  report.printTable(
    ['% of busy self time', ...services],
    [
      [
        'busy s / idle s',
        ...services.map(
          (svc) => `${fmt(stages[svc].busyMicros / 1e6, 1)}/${fmt(stages[svc].idleMicros / 1e6, 1)}`,
        ),
      ],
      ...ordered.map((n) => [
        n,
        ...services.map((svc) => fmt(stages[svc].stages.find((s) => s.stage === n)?.percent, 1)),
      ]),
    ],
  );
  log('profiles cover each process from start to exit (start-up, warm-up and the measured window)');
}

async function run(options) {
  const startedAt = new Date().toISOString();
  const infra = prepare(options);
  const runId = report.runIdOf(startedAt);
  const rates = ratesOf(options);
  const topics = runTopics(runPrefix(runId));
  const groups = {
    normalizer: `${topics.prefix}normalizer`,
    aggregator: `${topics.prefix}aggregator`,
    notifier: `${topics.prefix}notifier`,
  };
  const namespaces = { aggregator: `bench:${runId}:sessions`, notifier: `bench:${runId}:notifier` };
  assertOwn(topics.prefix, [...topics.raw, ...topics.canonical, topics.sessions, ...Object.values(groups)]);
  const token = adminToken();
  const tpl = templates();
  const admin = await kafka.connectAdmin(infra.brokers);
  const pids = stackPids(infra, { registry: true });
  const dir = countsDir(runId);
  const profileDir = path.join(report.ROOT, 'bench', 'results', 'profiles', `e2e-${runId}`);
  const nodeArgsOf = (svc) =>
    options.profile
      ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${svc}.cpuprofile`]
      : [];
  const redis = new Redis(infra.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    log(`run topics: ${topics.prefix}* (KAFKA_TOPIC_PREFIX of every service); rates ${rates.join(', ')}/s`);
    log(
      `stack pids: ${JSON.stringify(pids)} (Redis is shared: its other clients add to its CPU and commands)`,
    );
    // Retried: under load the broker may answer a fresh topic's metadata before its leaders are known.
    for (let attempt = 1; ; attempt++) {
      try {
        const main = [...new Set([...topics.raw, ...topics.canonical, topics.sessions])];
        await kafka.createTopics(admin, main, PARTITIONS);
        await kafka.createTopics(admin, [...topics.rawDlq, topics.telemetryDlq], 1);
        break;
      } catch (err) {
        if (attempt >= 5) throw err;
        log(`creating the run's topics failed (${err.message}); again in 2 s`);
        await sleep(2_000);
      }
    }
    const common = {
      KAFKA_BROKERS: infra.kafkaBrokers,
      REDIS_URL: infra.redisUrl,
      SCHEMA_REGISTRY_URL: infra.schemaRegistryUrl,
      KAFKA_TOPIC_PREFIX: topics.prefix,
      LOG_LEVEL: 'warn',
      SHUTDOWN_DRAIN_MS: '5000',
      HTTP_HOST: '127.0.0.1',
      ...counterEnv(dir),
    };
    let services;
    const result = await withChildren(async (children) => {
      const sinks = await startSinks({ count: 1, children });
      await sinks.request('capture', { mode: 'e' });
      const notifier = await startService(
        children,
        'notifier',
        NOTIFIER_MAIN,
        {
          ...notifierEnv({
            infra,
            prefix: topics.prefix,
            groupId: groups.notifier,
            namespace: namespaces.notifier,
            token,
          }),
          ...counterEnv(dir),
        },
        nodeArgsOf('notifier'),
      );
      const endpoint = await registerEndpoint(notifier.baseUrl, token, {
        url: sinks.url('e', 0),
        eventTypes: ['charging_session.started', 'charging_session.updated', 'charging_session.ended'],
      });
      await sinks.request('secrets', { mode: 'e', secrets: [endpoint.secret] });
      const aggregator = await startService(
        children,
        'session-aggregator',
        MAIN('session-aggregator'),
        {
          ...common,
          AGGREGATOR_GROUP_ID: groups.aggregator,
          AGGREGATOR_REDIS_NAMESPACE: namespaces.aggregator,
          AGGREGATOR_CHANGELOG_TOPIC: `${groups.aggregator}-state-changelog`,
          SESSIONS_TOPIC_PARTITIONS: String(PARTITIONS),
          SESSION_SWEEP_INTERVAL_MS: '3600000',
          VEHICLE_STATE_TTL_SECONDS: String(7 * 3600),
        },
        nodeArgsOf('aggregator'),
      );
      const normalizer = await startService(
        children,
        'normalizer',
        MAIN('normalizer'),
        { ...common, NORMALIZER_GROUP_ID: groups.normalizer, CANONICAL_TOPIC_PARTITIONS: String(PARTITIONS) },
        nodeArgsOf('normalizer'),
      );
      const ingress = await startService(
        children,
        'ingress',
        MAIN('ingress'),
        {
          ...common,
          SMARTCAR_MANAGEMENT_TOKEN: BENCH_SECRETS.smartcarManagementToken,
          TELEMATICA_WEBHOOK_SECRET: BENCH_SECRETS.telematicaWebhookSecret,
          DEDUP_TTL_SECONDS: '3600',
          RAW_TOPIC_PARTITIONS: String(PARTITIONS),
        },
        nodeArgsOf('ingress'),
      );
      services = {
        ingress: ingress.handle.pid,
        normalizer: normalizer.handle.pid,
        aggregator: aggregator.handle.pid,
        notifier: notifier.handle.pid,
      };
      const pool = new Pool(ingress.baseUrl, { connections: 50, pipelining: 1 });
      const ctx = {
        pool,
        tpl,
        sinks,
        readTap: (rate) =>
          readTap({
            brokers: infra.brokers,
            registryUrl: infra.schemaRegistryUrl,
            admin,
            groupId: `${topics.prefix}bench-tap-${rate}`,
            topics,
          }),
        options,
        runId,
        windowArgs: {
          pids: { ...services, ...pids, loadGenerator: process.pid, sinks: sinks.handle.pid },
          services,
          countsDir: dir,
          redis,
        },
      };
      try {
        // Warm-up (not reported): first schemas registered, connections opened, JIT warm.
        const warmupS = options.quick ? 1 + (SCENARIO.length - 1) * (STEP_MS / 1000) : WARMUP_S + 4;
        const warmRate = Math.min(500, Math.max(...rates));
        log(`warm-up: ${warmRate} webhooks/s for ${warmupS} s`);
        const warm = await drive({ pool, tpl, rate: warmRate, seconds: warmupS, idPrefix: `${runId}-w` });
        await waitForMatch(sinks, warm.vehicles);
        if (!options.quick) await warmBroker({ pool, tpl, sinks, rate: warmRate, kafkaPid: pids.kafka, runId });
        const rows = [];
        if (options.e2eIdleS > 0 && !options.profile) {
          await sleep(2_000); // let the warm-up's last commits and heartbeats settle
          rows.push(await runIdle(ctx));
        }
        for (const rate of rates) rows.push(await runRate(ctx, rate));
        const top = rows.filter((r) => !r.idle).at(-1);
        if (options.e2eKeepUpRate > 0 && top && options.e2eKeepUpRate > top.rate) {
          if (top.keptUp && top.accounted && top.match.all.p99Ms <= TARGETS.at1500.maxP99Ms) {
            log(`${top.rate}/s kept up: one more run at ${options.e2eKeepUpRate}/s`);
            rows.push(await runRate(ctx, options.e2eKeepUpRate));
          } else {
            log(`${top.rate}/s did not keep up: no run at ${options.e2eKeepUpRate}/s`);
          }
        }
        return { warmup: { load: warm.stats, vehicles: warm.vehicles.length }, rows };
      } finally {
        await pool.close().catch(() => {});
        for (const t of [ingress, normalizer, aggregator, notifier]) await stopTarget(t.handle);
      }
    });
    if (options.profile) result.profile = profileStages(profileDir);
    const rows = result.rows;
    const r = {
      benchmark: 'e2e',
      startedAt,
      finishedAt: new Date().toISOString(),
      parameters: {
        quick: options.quick,
        rates,
        seconds: options.e2eDurationS,
        idleSeconds: options.e2eIdleS,
        keepUpRate: options.e2eKeepUpRate,
        profile: options.profile,
        stepMs: STEP_MS,
        scenario: SCENARIO,
        topicPrefix: topics.prefix,
        stackPids: pids,
        method: 'bench/README.md (e2e) at machine.gitCommit',
        infrastructure: infra,
        targets: TARGETS,
      },
      machine: report.machineInfo(),
      result,
      goals: Object.fromEntries(
        rows.flatMap((row) => Object.entries(row.targets).map(([n, t]) => [`${rowLabel(row)} ${n}`, t.ok])),
      ),
    };
    printReport(r);
    if (result.profile) printStages(result.profile);
    report.writeResults('e2e', r);
    return r;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await redis.quit().catch(() => {});
    for (const ns of Object.values(namespaces)) {
      await deleteRedisNamespace(infra.redisUrl, ns)
        .then((n) => log(`Redis keys deleted under ${ns}: ${n}`))
        .catch((err) => log(`Redis cleanup of ${ns} failed: ${err.message}`));
    }
    await kafka.deleteRunResources(admin, topics.prefix, { registryUrl: infra.schemaRegistryUrl });
    await admin.disconnect().catch(() => {});
  }
}

module.exports = { run, matchEvents, targetsOf, printReport };
