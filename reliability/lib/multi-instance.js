'use strict';
/* global fetch, AbortSignal */

/**
 * The pipeline with every service as N instances, one instance of a service SIGKILLed mid-run, compared with a
 * clean single-instance run of the same input (`planReadings`: the same event ids, vehicles and provider times).
 * Each run gets topics, groups and Redis namespaces of its own (`KAFKA_TOPIC_PREFIX`) on the given Kafka and
 * registry, a redis-server of its own (the ingress's duplicate check is keyed by event id alone, so two runs of
 * the same ids must not share one), a receiver on [::1] subscribed to telemetry and session events, and the tap.
 * Used by reliability/test/multi-instance.test.ts (on the integration stack) and by
 * `npm run reliability -- multi-instance` (on the suite's own).
 */
const fs = require('node:fs');
const path = require('node:path');
const { setTimeout: sleep } = require('node:timers/promises');
const { Kafka, logLevel } = require('kafkajs');
const { startRedisProcess } = require('@ampflow/testing');
const { account, startTap, webhookId } = require('./accounting');
const { adminClient } = require('./context');
const { checkLogs } = require('./log-check');
const { log, startPlatform, suiteSecrets } = require('./platform');
const { startReceivers } = require('./receivers');
const { createLedger, drive } = require('./traffic');

const SERVICES = ['ingress', 'normalizer', 'session-aggregator', 'notifier'];
/** What the receiver subscribes to: one webhook per reading and one per session change. */
const EVENT_TYPES = ['vehicle.telemetry', 'charging_session.started', 'charging_session.ended'];
const SESSION_EVENT = { 1: 'charging_session.started', 2: 'charging_session.ended' };
/** The counter on each service's /metrics that says it did work (all its series summed). */
const WORK_METRIC = {
  ingress: 'ingress_requests_total',
  normalizer: 'normalizer_records_in_total',
  'session-aggregator': 'session_aggregator_readings_total',
  // Customer events made by its fan-out: every instance with source partitions makes them. Not its deliveries:
  // those of one endpoint are sent by the one instance owning the endpoint's deliveries partition, so a victim
  // may well have sent none.
  notifier: 'notifier_events_total',
};

/** The sum of every series of `name` on `service`'s /metrics, or undefined when it does not answer. */
async function workDone(service, name) {
  try {
    const res = await fetch(`${service.baseUrl}/metrics`, { signal: AbortSignal.timeout(5_000) });
    let sum = 0;
    for (const line of (await res.text()).split('\n')) {
      if (line.startsWith(`${name}{`) || line.startsWith(`${name} `))
        sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return sum;
  } catch {
    return undefined;
  }
}

/** Polls `check` (returns a truthy value when done) every 500 ms until it is done or `timeoutMs` passed. */
async function until(check, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const done = await check();
    if (done) return done;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(500);
  }
}

/** Deletes the run's topics and consumer groups (everything under `prefix`) from a shared broker. */
async function deleteRun(brokers, prefix) {
  const admin = new Kafka({ clientId: 'reliability-cleanup', brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const groups = (await admin.listGroups()).groups
      .map((g) => g.groupId)
      .filter((g) => g.startsWith(prefix));
    if (groups.length > 0) await admin.deleteGroups(groups).catch(() => {});
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
    if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 30_000 });
    return topics.length;
  } finally {
    await admin.disconnect();
  }
}

/** The webhook ids the receiver must get for what the tap saw: one per acknowledged reading and session change. */
function expectedWebhooks(events, tap) {
  const ids = new Set();
  for (const e of events) if (e.acked) ids.add(webhookId(`${e.provider}:${e.id}`, 'vehicle.telemetry'));
  for (const id of tap.counts.sessionCopies.keys()) {
    const type = SESSION_EVENT[id.slice(id.lastIndexOf(':') + 1)];
    if (type) ids.add(webhookId(id, type));
  }
  return ids;
}

/**
 * One run of `plan` through the platform with `instances` (service -> count) at `rate` readings/s. `kills`:
 * `{ service, atFraction, restartAfterMs? }`: the service's last instance SIGKILLed once that fraction of the
 * load's planned duration has passed, and started again `restartAfterMs` later (a supervisor) or never (the
 * other instances take over). Resolves when every acknowledged reading is on every topic and every expected
 * webhook was delivered (or `settleMs` passed) with a snapshot of what was counted; everything it started is
 * stopped, and with `cleanup` the run's topics and groups are deleted (on a shared broker).
 */
async function runPipeline({
  infra,
  plan,
  instances = {},
  kills = [],
  rate,
  label,
  runId,
  logDir,
  settleMs,
  cleanup = false,
}) {
  const prefix = `multi.${runId}.${label}.`;
  const runLogDir = path.join(logDir, label);
  fs.mkdirSync(runLogDir, { recursive: true });
  const secrets = suiteSecrets();
  const started = Date.now();
  const timings = {};
  let result;
  let ledgerOfRun;
  let endpointSecret;
  let redis;
  let receivers;
  let platform;
  let tap;
  try {
    redis = await startRedisProcess();
    receivers = await startReceivers();
    platform = await startPlatform({
      infra: { ...infra, redisUrl: redis.url },
      logDir: runLogDir,
      secrets,
      prefix,
      instances,
    });
    timings.startMs = Date.now() - started;
    const admin = adminClient(platform.notifier.baseUrl, secrets.notifierAdminToken);
    const created = await admin('POST', '/v1/endpoints', {
      url: receivers.url('ok', 'main'),
      eventTypes: EVENT_TYPES,
    });
    if (created.status !== 201)
      throw new Error(`registering the receiver: ${created.status} ${created.text}`);
    receivers.setSecret('main', created.json.secret);
    // Every notifier instance follows the endpoints topic; none may take a record before it knows the endpoint.
    for (const notifier of platform.replicas.notifier) {
      const client = adminClient(notifier.baseUrl, secrets.notifierAdminToken);
      await until(
        async () => (await client('GET', `/v1/endpoints/${created.json.id}`)).status === 200,
        30_000,
        `${notifier.label} learning the endpoint`,
      );
    }
    tap = await startTap({
      brokers: infra.kafkaBrokers.split(','),
      groupId: `${prefix}tap`,
      topics: {
        raw: `${prefix}ev.raw.telematica.v1`,
        rawSmartcar: `${prefix}ev.raw.smartcar.v1`,
        telemetry: `${prefix}ev.vehicle-telemetry.v1`,
        sessions: `${prefix}ev.charging-sessions.v1`,
      },
    });

    const ledger = createLedger();
    const t0 = Date.now();
    const plannedMs = (plan.length * 2 * 1000) / rate;
    const killed = [];
    const faults = (async () => {
      for (const kill of [...kills].sort((a, b) => a.atFraction - b.atFraction)) {
        await sleep(Math.max(0, t0 + kill.atFraction * plannedMs - Date.now()));
        const victim = platform.replicas[kill.service].at(-1);
        // What the victim had done: a kill of an instance that held no work would show nothing.
        const workBefore = await workDone(victim, WORK_METRIC[kill.service]);
        const record = {
          service: kill.service,
          instance: victim.label,
          pid: victim.pid,
          atMs: Date.now() - t0,
          workMetric: WORK_METRIC[kill.service],
          workBefore,
        };
        log(
          `${label}: SIGKILL ${victim.label} (pid ${victim.pid}) at ${(record.atMs / 1000).toFixed(1)} s ` +
            `(${record.workMetric} ${workBefore})`,
        );
        await victim.kill('SIGKILL');
        killed.push(record);
        if (kill.restartAfterMs !== undefined) {
          await sleep(kill.restartAfterMs);
          victim.start();
          record.restartedAtMs = Date.now() - t0;
          // Ready in the background: the next kill keeps its time.
          victim.waitReady().then(
            () => (record.readyAtMs = Date.now() - t0),
            (err) => (record.restartError = err.message),
          );
        }
      }
    })();
    // Both settle before anything is stopped: a kill schedule still running could start a process after the stop.
    const [load, schedule] = await Promise.allSettled([
      drive({
        baseUrls: platform.replicas.ingress.map((s) => s.baseUrl),
        secret: secrets.telematicaWebhookSecret,
        smartcarToken: secrets.smartcarManagementToken,
        ledger,
        plan,
        rate,
        tag: label,
        giveUpMs: 120_000,
      }),
      faults,
    ]);
    if (load.status === 'rejected') throw load.reason;
    if (schedule.status === 'rejected') throw schedule.reason;
    timings.loadMs = Date.now() - t0;
    const events = [...ledger.events.values()];
    const settled = Date.now();
    let complete = false;
    try {
      await until(
        () => {
          // A replacement counts once it is ready (in its group again), whatever it had left to do.
          if (
            killed.some((k) => k.restartedAtMs !== undefined && k.readyAtMs === undefined && !k.restartError)
          )
            return false;
          const accounting = account({ events, tap, receiver: receivers });
          if (accounting.lost > 0) return false;
          // Each raw record has its canonical one, also a reading stored but never acknowledged.
          for (const [id, provider] of tap.counts.rawProvider)
            if (!tap.counts.telemetry.has(`${provider}:${id}`)) return false;
          for (const id of expectedWebhooks(events, tap)) if (!receivers.received.has(id)) return false;
          return true;
        },
        settleMs,
        `${label} settling`,
      );
      complete = true;
    } catch (err) {
      log(err.message);
    }
    timings.settleMs = Date.now() - settled;
    for (const r of killed) if (r.restartError) throw new Error(`${r.instance} restarted: ${r.restartError}`);
    result = {
      label,
      instances: Object.fromEntries(SERVICES.map((s) => [s, platform.replicas[s].length])),
      complete,
      kills: killed,
      events,
      answers: ledger.answers,
      raw: new Map(tap.counts.raw),
      rawProvider: new Map(tap.counts.rawProvider),
      telemetry: new Map(tap.counts.telemetry),
      sessions: new Map([...tap.counts.sessionCopies].map(([id, copies]) => [id, new Map(copies)])),
      received: new Map(receivers.received),
      badSignatures: receivers.stats.badSignatures,
      accounting: account({ events, tap, receiver: receivers }),
      timings,
    };
    ledgerOfRun = ledger;
    endpointSecret = created.json.secret;
  } finally {
    await tap?.stop();
    const stopping = Date.now();
    await platform?.stop().catch((err) => log(`stopping ${label}: ${err.message}`));
    timings.stopMs = Date.now() - stopping;
    await receivers?.close();
    await redis?.stop().catch((err) => log(`stopping redis of ${label}: ${err.message}`));
    if (cleanup)
      await deleteRun(infra.kafkaBrokers.split(','), prefix).catch((err) =>
        log(`deleting the topics of ${label}: ${err.message}`),
      );
    timings.totalMs = Date.now() - started;
  }
  // The run's logs (every instance's) carry none of its secrets, signatures or VINs.
  result.logCheck = checkLogs({
    logDir: runLogDir,
    secrets,
    ctx: { ledgers: [ledgerOfRun], endpointSecrets: [endpointSecret] },
  });
  return result;
}

function sumRepeats(counts) {
  let repeated = 0;
  for (const n of counts) repeated += n - 1;
  return repeated;
}

/**
 * `run` against `clean` (both from `runPipeline` on the same plan): per stage what was expected, found, missing
 * and repeated, and `problems`, empty when the run kept every promise:
 * - every acknowledged reading is on its raw topic (at least once);
 * - every raw record has its canonical record (at least once, duplicates counted);
 * - the sessions are the clean run's: the same `<sessionId>:<version>` changes, none missing, none extra (a second
 *   STARTED would be one), every copy byte for byte the clean run's (duplicates counted);
 * - every webhook the clean run delivered is delivered (distinct `webhook-id`s; repeats counted), none other.
 */
function compareRuns(clean, run) {
  const problems = [];
  const acked = run.events.filter((e) => e.acked);
  const rawMissing = acked.filter((e) => !run.raw.has(e.id)).map((e) => e.id);
  const canonicalMissing = [...run.rawProvider]
    .filter(([id, p]) => !run.telemetry.has(`${p}:${id}`))
    .map(([id]) => id);
  const sessionMissing = [...clean.sessions.keys()].filter((id) => !run.sessions.has(id));
  const sessionExtra = [...run.sessions.keys()].filter((id) => !clean.sessions.has(id));
  const sessionDiffering = [];
  for (const [id, copies] of run.sessions) {
    const cleanCopies = clean.sessions.get(id);
    if (!cleanCopies) continue;
    const [cleanBody] = cleanCopies.keys();
    if ([...copies.keys()].some((body) => body !== cleanBody)) sessionDiffering.push(id);
  }
  const deliveredMissing = [...clean.received.keys()].filter((id) => !run.received.has(id));
  const deliveredExtra = [...run.received.keys()].filter((id) => !clean.received.has(id));
  // 503 is the documented answer to an outage (retried, as providers do); any other 5xx is a bug.
  const unintended5xx = run.answers.fiveXx.filter((a) => a.status !== 503).length;
  const stages = {
    acknowledged: { tried: run.events.length, acknowledged: acked.length, unintended5xx },
    raw: {
      expected: acked.length,
      ids: run.raw.size,
      smartcar: [...run.rawProvider.values()].filter((p) => p === 'smartcar').length,
      records: [...run.raw.values()].reduce((a, n) => a + n, 0),
      missing: rawMissing.length,
      duplicated: sumRepeats(run.raw.values()),
    },
    canonical: {
      expected: run.rawProvider.size,
      ids: run.telemetry.size,
      records: [...run.telemetry.values()].reduce((a, n) => a + n, 0),
      missing: canonicalMissing.length,
      duplicated: sumRepeats(run.telemetry.values()),
    },
    sessions: {
      expected: clean.sessions.size,
      changes: run.sessions.size,
      started: [...run.sessions.keys()].filter((id) => id.endsWith(':1')).length,
      ended: [...run.sessions.keys()].filter((id) => id.endsWith(':2')).length,
      missing: sessionMissing.length,
      extra: sessionExtra.length,
      differing: sessionDiffering.length,
      duplicated: sumRepeats([...run.sessions.values()].flatMap((copies) => [...copies.values()])),
    },
    delivered: {
      expected: clean.received.size,
      ids: run.received.size,
      missing: deliveredMissing.length,
      extra: deliveredExtra.length,
      duplicated: sumRepeats(run.received.values()),
      badSignatures: run.badSignatures,
    },
  };
  const note = (list, what) => {
    if (list.length > 0) problems.push(`${list.length} ${what} (e.g. ${list.slice(0, 3).join(', ')})`);
  };
  if (acked.length !== run.events.length)
    problems.push(`${run.events.length - acked.length} of ${run.events.length} readings never acknowledged`);
  if (clean.events.length !== run.events.length)
    problems.push(`the clean run sent ${clean.events.length} readings, this one ${run.events.length}`);
  if (unintended5xx > 0) problems.push(`${unintended5xx} answers 5xx other than 503`);
  note(rawMissing, 'acknowledged readings not on the raw topic');
  note(canonicalMissing, 'raw records without a canonical record');
  note(sessionMissing, 'session changes of the clean run missing');
  note(sessionExtra, 'session changes the clean run does not have');
  note(sessionDiffering, 'session changes with a copy unlike the clean run');
  note(deliveredMissing, 'webhooks of the clean run not delivered');
  note(deliveredExtra, 'webhooks the clean run did not deliver');
  if (run.badSignatures > 0) problems.push(`${run.badSignatures} webhooks with a bad signature`);
  if (!run.complete) problems.push('not complete within the settle time');
  if (run.logCheck.verdict !== 'pass') problems.push(`log check: ${run.logCheck.verdict}`);
  return { stages, problems };
}

/**
 * What a clean run must show by itself: every reading acknowledged and on its provider's raw topic, a STARTED and an ENDED
 * change per vehicle, and one delivered webhook per reading and per change.
 */
function checkClean(clean, vehicles) {
  const problems = [];
  const acked = clean.events.filter((e) => e.acked).length;
  if (acked !== vehicles * 2) problems.push(`${acked} of ${vehicles * 2} readings acknowledged`);
  for (const provider of ['telematica', 'smartcar']) {
    const sent = clean.events.filter((e) => e.provider === provider).length;
    const stored = [...clean.rawProvider.values()].filter((p) => p === provider).length;
    if (stored !== sent) problems.push(`${stored} ${provider} raw ids for ${sent} ${provider} readings sent`);
  }
  const started = [...clean.sessions.keys()].filter((id) => id.endsWith(':1')).length;
  const ended = [...clean.sessions.keys()].filter((id) => id.endsWith(':2')).length;
  if (started !== vehicles || ended !== vehicles || clean.sessions.size !== vehicles * 2)
    problems.push(
      `${clean.sessions.size} session changes (${started} STARTED, ${ended} ENDED) for ${vehicles}`,
    );
  if (clean.received.size !== vehicles * 4)
    problems.push(`${clean.received.size} distinct webhooks delivered, expected ${vehicles * 4}`);
  if (!clean.complete) problems.push('not complete within the settle time');
  return problems;
}

/** One line per stage of a comparison, for logs and reports. */
function summarize(run, { stages }) {
  const s = stages;
  const kills = run.kills
    .map(
      (k) =>
        `${k.instance} at ${(k.atMs / 1000).toFixed(1)} s after ${k.workBefore} ${k.workMetric}` +
        (k.restartedAtMs === undefined ? '' : ` (restarted ${(k.restartedAtMs / 1000).toFixed(1)} s)`),
    )
    .join(', ');
  return [
    `${run.label}: instances ${SERVICES.map((n) => `${n} ${run.instances[n]}`).join(', ')}; killed: ${kills || 'none'}`,
    `  acknowledged ${s.acknowledged.acknowledged}/${s.acknowledged.tried}; raw ${s.raw.ids} ids (${s.raw.smartcar} Smartcar), ${s.raw.records} records (+${s.raw.duplicated}), missing ${s.raw.missing}`,
    `  canonical ${s.canonical.ids}/${s.canonical.expected} (+${s.canonical.duplicated}), missing ${s.canonical.missing}`,
    `  sessions ${s.sessions.changes}/${s.sessions.expected} changes (${s.sessions.started} STARTED, ${s.sessions.ended} ENDED, +${s.sessions.duplicated} copies), missing ${s.sessions.missing}, extra ${s.sessions.extra}, differing ${s.sessions.differing}`,
    `  delivered ${s.delivered.ids}/${s.delivered.expected} webhook ids (+${s.delivered.duplicated} repeats), missing ${s.delivered.missing}, extra ${s.delivered.extra}`,
    `  answers ${JSON.stringify(run.answers.byStatus)}, connection errors ${JSON.stringify(run.answers.errors)}`,
    `  timings: start ${run.timings.startMs} ms, load ${run.timings.loadMs} ms, settle ${run.timings.settleMs} ms, stop ${run.timings.stopMs} ms, total ${run.timings.totalMs} ms`,
  ].join('\n');
}

module.exports = { runPipeline, compareRuns, checkClean, summarize, SERVICES, EVENT_TYPES, WORK_METRIC };
