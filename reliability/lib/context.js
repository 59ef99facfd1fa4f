'use strict';
/* global fetch, AbortSignal */

/**
 * What every experiment gets: the platform on the suite's own infrastructure, the receivers, the tap, a ledger
 * per experiment, and helpers to run load while a fault happens and to wait until everything acknowledged
 * arrived everywhere.
 */
const fs = require('node:fs');
const path = require('node:path');
const { setTimeout: sleep } = require('node:timers/promises');
const { account } = require('./accounting');
const { createLedger, drive } = require('./traffic');
const { log } = require('./platform');

/** `fetch` of the notifier's admin API with the run's token (or `token`), JSON in and out. */
function adminClient(baseUrl, defaultToken) {
  return async (method, route, body, { token = defaultToken, headers = {}, raw } = {}) => {
    const res = await fetch(`${baseUrl}${route}`, {
      method,
      headers: {
        ...(token === null ? {} : { authorization: `Bearer ${token}` }),
        ...(body !== undefined && raw === undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      body: raw !== undefined ? raw : body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(20_000),
    });
    const text = await res.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, json, text };
  };
}

/** Reads a fault-stack component's pid (`kafka` or `registry`). */
function stackPid(infra, component) {
  return Number(fs.readFileSync(path.join(infra.stack.stateDir, 'pids', `${component}.pid`), 'utf8').trim());
}

/**
 * Polls `account()` until nothing acknowledged is missing or `timeoutMs` passed; returns the last accounting
 * and when it became complete.
 */
async function waitAccounted(ctx, events, { timeoutMs, receiver = ctx.receivers }) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const accounting = account({ events, tap: ctx.tap, receiver });
    if (accounting.lost === 0) return { accounting, completeAt: Date.now() };
    if (Date.now() > deadline) return { accounting, completeAt: undefined };
    await sleep(500);
  }
}

/**
 * The shape of most experiments: steady load through the ingress while `fault(t)` runs (it resolves with the
 * time the fault was cleared), then waiting until every acknowledged reading is on the raw, telemetry and
 * sessions topics and at the receiver. 503 answers are the documented answer to an outage; any other 5xx is
 * unintended. Recovery time: from the fault cleared until everything acknowledged had arrived everywhere.
 */
async function underLoad(ctx, { name, vehicles, rate, fault, settleMs, connections }) {
  const ledger = ctx.newLedger(name);
  const t0 = Date.now();
  const load = drive({
    baseUrl: ctx.platform.ingress.baseUrl,
    secret: ctx.secrets.telematicaWebhookSecret,
    ledger,
    vehicles,
    rate,
    tag: name,
    connections,
    giveUpMs: ctx.full ? 240_000 : 120_000,
  });
  let clearedAt = Date.now();
  let faultError;
  const faultDone = fault({ t0 }).then(
    (at) => (clearedAt = at ?? Date.now()),
    (err) => (faultError = err),
  );
  await Promise.all([load, faultDone]);
  const events = [...ledger.events.values()];
  const { accounting, completeAt } = await waitAccounted(ctx, events, {
    timeoutMs: settleMs ?? ctx.settleMs,
  });
  const unintended = ledger.answers.fiveXx.filter((a) => a.status !== 503);
  return row(name, {
    accounting,
    unintended5xx: unintended.length,
    slowestMs: ledger.answers.slowestMs,
    recoveryMs: completeAt === undefined ? 'never' : Math.max(0, completeAt - clearedAt),
    details: {
      answers: ledger.answers.byStatus,
      connectionErrors: ledger.answers.errors,
      unintendedCodes: countBy(unintended.map((a) => `${a.status} ${a.code ?? ''}`)),
      faultError: faultError?.message,
    },
    failure: faultError ? `fault step failed: ${faultError.message}` : undefined,
  });
}

function countBy(list) {
  const out = {};
  for (const x of list) out[x] = (out[x] ?? 0) + 1;
  return out;
}

/** One table row; the verdict is `pass` only when nothing was lost, forged or answered with an unintended 5xx. */
function row(
  experiment,
  { accounting, unintended5xx = 0, forgeries = 0, slowestMs, recoveryMs = null, details, failure },
) {
  const a = accounting ?? {
    tried: 0,
    acknowledged: 0,
    stored: 0,
    lost: 0,
    duplicatedKafka: 0,
    duplicatedDelivered: 0,
  };
  const reasons = [];
  if (a.lost > 0) reasons.push(`${a.lost} lost`);
  if (unintended5xx > 0) reasons.push(`${unintended5xx} unintended 5xx`);
  if (forgeries > 0) reasons.push(`${forgeries} forgeries`);
  if (failure) reasons.push(failure);
  return {
    experiment,
    tried: a.tried,
    acknowledged: a.acknowledged,
    stored: a.stored,
    lost: a.lost,
    duplicated: a.duplicatedKafka,
    redelivered: a.duplicatedDelivered,
    forgeries,
    unintended5xx,
    slowestMs,
    recoveryMs,
    verdict: reasons.length === 0 ? 'pass' : `FAIL: ${reasons.join(', ')}`,
    stages: accounting?.stages,
    details,
  };
}

function createContext({ infra, platform, receivers, tap, secrets, full, logDir, endpoint }) {
  const ledgers = [];
  return {
    infra,
    platform,
    receivers,
    tap,
    secrets,
    full,
    logDir,
    endpoint,
    ledgers,
    settleMs: full ? 240_000 : 90_000,
    admin: adminClient(platform.notifier.baseUrl, secrets.notifierAdminToken),
    log,
    newLedger(name) {
      const ledger = createLedger();
      ledger.name = name;
      ledgers.push(ledger);
      return ledger;
    },
  };
}

module.exports = { createContext, underLoad, waitAccounted, row, stackPid, adminClient, countBy };
