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
const { startCpuSample } = require('./lib/cpu');
const { prepare, stackPids } = require('./lib/infra');
const kafka = require('./lib/kafka');
const { NOTIFIER_MAIN, adminToken, notifierEnv, registerEndpoint } = require('./lib/notifier-service');
const { deleteRedisNamespace } = require('./lib/redis');
const { startTarget, stopTarget, waitForHttpOk, withChildren } = require('./lib/processes');
const report = require('./lib/report');
const { startSinks } = require('./lib/sinks');
const { percentile, round } = require('./lib/stats');
const { assertOwn, runPrefix, runTopics } = require('./lib/topics');
const { BENCH_SECRETS, loadWebhookFixtures } = require('./lib/webhook-requests');

const { ROOT, log } = report;
const MAIN = (service) => path.join(ROOT, 'services', service, 'dist', 'main.js');
const PARTITIONS = 6;
const READY_TIMEOUT_MS = 90_000;
const STEP_MS = 1_000;
const WARMUP_S = 3;
const GOALS = { maxP99Ms: 250 };
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
 * A bench consumer (own group under the run's prefix) on the telemetry and sessions topics, decoding every
 * record, to split the latency into hops by the Kafka record timestamps (set by each service's producer when
 * it hands the record over): telemetry by `<vehicleId>|<occurredAt>`, sessions by `<vehicleId>|<at>|<kind>`
 * (startedAt for STARTED, endedAt for ENDED: the occurredAt of the reading that caused it).
 */
async function startTap({ brokers, registryUrl, groupId, topics }) {
  const registry = new SchemaRegistry({ host: registryUrl });
  const times = new Map();
  const consumer = kafka.quietKafka(brokers, 'bench-e2e-tap').consumer({ groupId, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topics.telemetry, topics.sessions], fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ topic, message }) => {
      const ts = Number(message.timestamp);
      try {
        const value = await registry.decode(message.value);
        if (topic === topics.telemetry) times.set(`${value.vehicleId}|${value.occurredAt}`, ts);
        else if (value.change === 'STARTED') times.set(`${value.vehicleId}|${value.startedAt}|started`, ts);
        else if (value.change === 'ENDED') times.set(`${value.vehicleId}|${value.endedAt}|ended`, ts);
      } catch {
        // not ours to judge: the services dead-letter what they cannot read
      }
    },
  });
  return { times, stop: () => consumer.disconnect().catch(() => {}) };
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
function matchEvents(vehicles, captured, tapTimes) {
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
  const hops = { ingress: [], normalizer: [], aggregator: [], notifier: [] };
  const counts = {
    started: { expected: 0, received: 0, duplicates: 0 },
    ended: { expected: 0, received: 0, duplicates: 0 },
  };
  for (const v of vehicles) {
    const vid = `telematica:${v.providerVehicleId}`;
    const events = byVehicle.get(vid) ?? [];
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
    started: summary(latencies.started),
    ended: summary(latencies.ended),
    all: summary([...latencies.started, ...latencies.ended]),
    hops: Object.fromEntries(Object.entries(hops).map(([k, values]) => [k, summary(values)])),
    byType,
  };
}

/** Polls the sink until every started/ended webhook of `vehicles` arrived, or 30 s without a new one. */
async function waitForMatch(sinks, vehicles) {
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
    if (Date.now() - lastChange > 30_000) return false;
    await sleep(500);
  }
}

async function startService(children, name, script, env, { ready = true } = {}) {
  const t = await startTarget(name, script, { env, children });
  if (ready) await waitForHttpOk(t.handle, `${t.baseUrl}/readyz`, READY_TIMEOUT_MS);
  return t;
}

function printReport(r) {
  const x = r.result;
  const m = x.measured;
  log('');
  log(
    `${r.parameters.rate} webhooks/s for ${r.parameters.seconds} s (sent ${m.load.sent}, 200 ${m.load.ok}, failed ` +
      `${m.load.failed} ${JSON.stringify(m.load.errors)}, achieved ${m.load.perSec}/s, max lateness ` +
      `${m.load.lateMsMax} ms); ${m.vehicles} vehicles; ${r.machine.cpuCount} CPUs, load average at start ` +
      `${r.machine.loadAverageAtStart.join(' ')}`,
  );
  report.printTable(
    [
      'ingress 200 -> sink webhook',
      'expected',
      'received',
      'duplicates',
      'p50 ms',
      'p90 ms',
      'p99 ms',
      'max ms',
    ],
    ['started', 'ended']
      .map((k) => [
        `charging_session.${k}`,
        m.match.counts[k].expected,
        m.match.counts[k].received,
        m.match.counts[k].duplicates,
        m.match[k].p50Ms,
        m.match[k].p90Ms,
        m.match[k].p99Ms,
        m.match[k].maxMs,
      ])
      .concat([
        ['both', '', '', '', m.match.all.p50Ms, m.match.all.p90Ms, m.match.all.p99Ms, m.match.all.maxMs],
      ]),
  );
  report.printTable(
    ['hop (started + ended)', 'samples', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'],
    [
      ['ingress: sent -> 200', 'ingress'],
      ['normalizer: 200 -> telemetry record', 'normalizer'],
      ['aggregator: telemetry -> session record', 'aggregator'],
      ['notifier: session record -> sink', 'notifier'],
    ].map(([label, k]) => [
      label,
      m.match.hops[k].samples,
      m.match.hops[k].p50Ms,
      m.match.hops[k].p90Ms,
      m.match.hops[k].p99Ms,
      m.match.hops[k].maxMs,
    ]),
  );
  log('hops: by the Kafka record timestamps (set when a service hands the record to its producer)');
  log(`webhooks at the sink by type: ${JSON.stringify(m.match.byType)}; all accounted for: ${m.accounted}`);
  log(`CPU cores: ${report.formatCores(m.cpu.cores)}`);
  log('');
  log(`goal: p99 <= ${GOALS.maxP99Ms} ms (started and ended): ${report.met(r.goals.p99)}`);
  log(`goal: every session event accounted for: ${report.met(r.goals.accounted)}`);
}

async function run(options) {
  const startedAt = new Date().toISOString();
  const infra = prepare(options);
  const runId = report.runIdOf(startedAt);
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
  const pids = stackPids(infra);
  try {
    log(`run topics: ${topics.prefix}* (KAFKA_TOPIC_PREFIX of every service)`);
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
    };
    const result = await withChildren(async (children) => {
      const sinks = await startSinks({ count: 1, children });
      await sinks.request('capture', { mode: 'e' });
      const notifier = await startService(
        children,
        'notifier',
        NOTIFIER_MAIN,
        notifierEnv({
          infra,
          prefix: topics.prefix,
          groupId: groups.notifier,
          namespace: namespaces.notifier,
          token,
        }),
      );
      const endpoint = await registerEndpoint(notifier.baseUrl, token, {
        url: sinks.url('e', 0),
        eventTypes: ['charging_session.started', 'charging_session.updated', 'charging_session.ended'],
      });
      await sinks.request('secrets', { mode: 'e', secrets: [endpoint.secret] });
      const aggregator = await startService(children, 'session-aggregator', MAIN('session-aggregator'), {
        ...common,
        AGGREGATOR_GROUP_ID: groups.aggregator,
        AGGREGATOR_REDIS_NAMESPACE: namespaces.aggregator,
        AGGREGATOR_CHANGELOG_TOPIC: `${groups.aggregator}-state-changelog`,
        SESSIONS_TOPIC_PARTITIONS: String(PARTITIONS),
        SESSION_SWEEP_INTERVAL_MS: '3600000',
        VEHICLE_STATE_TTL_SECONDS: String(7 * 3600),
      });
      const normalizer = await startService(children, 'normalizer', MAIN('normalizer'), {
        ...common,
        NORMALIZER_GROUP_ID: groups.normalizer,
        CANONICAL_TOPIC_PARTITIONS: String(PARTITIONS),
      });
      const ingress = await startService(children, 'ingress', MAIN('ingress'), {
        ...common,
        SMARTCAR_MANAGEMENT_TOKEN: BENCH_SECRETS.smartcarManagementToken,
        TELEMATICA_WEBHOOK_SECRET: BENCH_SECRETS.telematicaWebhookSecret,
        DEDUP_TTL_SECONDS: '3600',
        RAW_TOPIC_PARTITIONS: String(PARTITIONS),
      });
      const pool = new Pool(ingress.baseUrl, { connections: 50, pipelining: 1 });
      const tap = await startTap({
        brokers: infra.brokers,
        registryUrl: infra.schemaRegistryUrl,
        groupId: `${topics.prefix}bench-tap`,
        topics,
      });
      try {
        // Warm-up (not reported): first schemas registered, connections opened, JIT warm.
        const warmupS = options.quick ? 1 + (SCENARIO.length - 1) * (STEP_MS / 1000) : WARMUP_S + 4;
        log(`warm-up: ${options.e2eRate} webhooks/s for ${warmupS} s`);
        const warm = await drive({
          pool,
          tpl,
          rate: options.e2eRate,
          seconds: warmupS,
          idPrefix: `${runId}-w`,
        });
        await waitForMatch(sinks, warm.vehicles);
        log(`measured: ${options.e2eRate} webhooks/s for ${options.e2eDurationS} s`);
        const cpu = startCpuSample({
          ingress: ingress.handle.pid,
          normalizer: normalizer.handle.pid,
          aggregator: aggregator.handle.pid,
          notifier: notifier.handle.pid,
          sinks: sinks.handle.pid,
          benchProcess: process.pid,
          ...pids,
        });
        const measured = await drive({
          pool,
          tpl,
          rate: options.e2eRate,
          seconds: options.e2eDurationS,
          idPrefix: `${runId}-m`,
        });
        const usage = cpu.stop();
        await waitForMatch(sinks, measured.vehicles);
        await sleep(1_000); // a duplicate would arrive after the last expected webhook
        const final = await sinks.request('report', { mode: 'e' });
        const match = matchEvents(measured.vehicles, final.captured, tap.times);
        const accounted =
          match.counts.started.received === match.counts.started.expected &&
          match.counts.ended.received === match.counts.ended.expected &&
          match.counts.started.duplicates === 0 &&
          match.counts.ended.duplicates === 0 &&
          match.counts.started.expected === measured.vehicles.length &&
          match.counts.ended.expected === measured.vehicles.length;
        return {
          warmup: { load: warm.stats, vehicles: warm.vehicles.length },
          measured: {
            load: measured.stats,
            vehicles: measured.vehicles.length,
            match,
            accounted,
            cpu: usage,
            signatures: { verified: final.verified, failed: final.verifyFailed },
          },
        };
      } finally {
        await pool.close().catch(() => {});
        await tap.stop();
        for (const t of [ingress, normalizer, aggregator, notifier]) await stopTarget(t.handle);
      }
    });
    const m = result.measured.match;
    const r = {
      benchmark: 'e2e',
      startedAt,
      finishedAt: new Date().toISOString(),
      parameters: {
        quick: options.quick,
        rate: options.e2eRate,
        seconds: options.e2eDurationS,
        stepMs: STEP_MS,
        scenario: SCENARIO,
        topicPrefix: topics.prefix,
        method: 'bench/README.md (e2e) at machine.gitCommit',
        infrastructure: infra,
        goals: GOALS,
      },
      machine: report.machineInfo(),
      result,
      goals: {
        p99: m.started.p99Ms <= GOALS.maxP99Ms && m.ended.p99Ms <= GOALS.maxP99Ms,
        accounted: result.measured.accounted,
      },
    };
    printReport(r);
    report.writeResults('e2e', r);
    return r;
  } finally {
    for (const ns of Object.values(namespaces)) {
      await deleteRedisNamespace(infra.redisUrl, ns)
        .then((n) => log(`Redis keys deleted under ${ns}: ${n}`))
        .catch((err) => log(`Redis cleanup of ${ns} failed: ${err.message}`));
    }
    await kafka.deleteRunResources(admin, topics.prefix, { registryUrl: infra.schemaRegistryUrl });
    await admin.disconnect().catch(() => {});
  }
}

module.exports = { run };
