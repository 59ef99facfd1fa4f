'use strict';

/**
 * Customer endpoints that misbehave: one that answers slowly, one that never answers (timeouts), one that
 * resets the connection, one that redirects, one that answers 500 for a long stretch and then recovers, and one
 * that answers 410 (the notifier disables it) and comes back: it is re-enabled and its dead letters recovered
 * through the admin API. Every acknowledged reading must end, for every endpoint, either delivered (2xx) or as
 * a dead letter that the admin API lists (recoverable); the endpoints that come back must have everything.
 */
const { setTimeout: sleep } = require('node:timers/promises');
const { drive } = require('../lib/traffic');
const { webhookId } = require('../lib/accounting');
const { row } = require('../lib/context');

const MODES = ['slow', 'timeout', 'reset', 'redirect', 'fail', 'gone'];

async function deadLetterIds(ctx, endpointId) {
  const res = await ctx.admin('GET', `/v1/dead-letters?endpointId=${endpointId}&limit=1000`);
  if (res.status !== 200) throw new Error(`GET /v1/dead-letters: ${res.status} ${res.text.slice(0, 200)}`);
  return new Map(res.json.data.map((d) => [d.messageId, d.reason]));
}

async function endpoints(ctx) {
  const name = 'endpoints';
  const t0 = Date.now();
  const failMs = ctx.full ? 180_000 : 20_000;
  const registered = {};
  for (const mode of MODES) {
    const res = await ctx.admin('POST', '/v1/endpoints', {
      url: ctx.receivers.url(mode, `${name}-${mode}`),
      eventTypes: ['vehicle.telemetry'],
      description: `reliability ${mode}`,
    });
    if (res.status !== 201) throw new Error(`registering ${mode}: ${res.status} ${res.text.slice(0, 200)}`);
    registered[mode] = res.json;
    ctx.receivers.setSecret(`${name}-${mode}`, res.json.secret);
    ctx.endpointSecrets.push(res.json.secret);
  }
  ctx.receivers.failFor(`${name}-fail`, failMs);
  ctx.receivers.setGone(`${name}-gone`, true);
  const ledger = ctx.newLedger(name);
  await drive({
    baseUrl: ctx.platform.ingress.baseUrl,
    secret: ctx.secrets.telematicaWebhookSecret,
    ledger,
    vehicles: ctx.full ? 50 : 10,
    rate: 10,
    tag: name,
  });
  const acked = [...ledger.events.values()].filter((e) => e.acked);
  const expectedIds = acked.map((e) => webhookId(`telematica:${e.id}`, 'vehicle.telemetry'));

  // Settled: each endpoint's every message delivered or dead-lettered (the retry schedule is 0,1s,2s,4s,8s).
  const settle = async (modes, deadlineMs) => {
    const deadline = Date.now() + deadlineMs;
    for (;;) {
      const state = {};
      let open = 0;
      for (const mode of modes) {
        const delivered = ctx.receivers.byEndpoint.get(`${name}-${mode}`) ?? new Map();
        const dead = await deadLetterIds(ctx, registered[mode].id);
        const s = { delivered: 0, deadLettered: 0, missing: 0, reasons: {}, redelivered: 0 };
        for (const id of expectedIds) {
          const n = delivered.get(id) ?? 0;
          if (n > 0) {
            s.delivered += 1;
            s.redelivered += n - 1;
          } else if (dead.has(id)) {
            s.deadLettered += 1;
            s.reasons[dead.get(id)] = (s.reasons[dead.get(id)] ?? 0) + 1;
          } else s.missing += 1;
        }
        open += s.missing;
        state[mode] = s;
      }
      if (open === 0 || Date.now() > deadline) return state;
      await sleep(1_000);
    }
  };
  const first = await settle(MODES, Math.max(0, t0 + failMs - Date.now()) + (ctx.full ? 600_000 : 240_000));

  // The endpoints that come back: the 410 one re-enabled, then both recover their dead letters.
  ctx.receivers.setGone(`${name}-gone`, false);
  const recoverStarted = Date.now();
  const enabled = await ctx.admin('PATCH', `/v1/endpoints/${registered.gone.id}`, { enabled: true });
  const since = new Date(t0 - 1_000).toISOString();
  const recovered = {};
  for (const mode of ['fail', 'gone']) {
    const r = await ctx.admin('POST', `/v1/endpoints/${registered[mode].id}/recover`, { since });
    recovered[mode] = `${r.status} ${r.text.slice(0, 120)}`;
  }
  const back = await settle(['fail', 'gone'], ctx.full ? 120_000 : 60_000);
  const everythingBack =
    back.fail.delivered === expectedIds.length && back.gone.delivered === expectedIds.length;
  const recoveryMs = everythingBack ? Date.now() - recoverStarted : 'never';
  for (const mode of MODES) await ctx.admin('DELETE', `/v1/endpoints/${registered[mode].id}`);

  const final = { ...first, fail: back.fail, gone: back.gone };
  const lost = Object.values(final).reduce((n, s) => n + s.missing, 0);
  const accounted = Object.values(final).reduce((n, s) => n + s.delivered + s.deadLettered, 0);
  const r = row(name, {
    accounting: {
      tried: ledger.events.size * MODES.length,
      acknowledged: expectedIds.length * MODES.length,
      stored: accounted,
      lost,
      duplicatedKafka: 0,
      duplicatedDelivered: Object.values(final).reduce((n, s) => n + s.redelivered, 0),
    },
    unintended5xx: ledger.answers.fiveXx.filter((a) => a.status !== 503).length,
    slowestMs: ledger.answers.slowestMs,
    recoveryMs,
    details: {
      readings: expectedIds.length,
      failForMs: failMs,
      beforeRecover: first,
      afterRecover: { fail: back.fail, gone: back.gone },
      reEnable: `${enabled.status}`,
      recover: recovered,
      receiverBadSignatures: ctx.receivers.stats.badSignatures,
    },
    failure:
      [
        everythingBack ? undefined : 'the endpoints that came back did not receive every message',
        ctx.receivers.stats.badSignatures > 0
          ? `${ctx.receivers.stats.badSignatures} webhooks failed verification`
          : undefined,
      ]
        .filter(Boolean)
        .join('; ') || undefined,
  });
  r.stored = `${accounted} (${Object.values(final).reduce((n, s) => n + s.delivered, 0)} delivered)`;
  return r;
}

module.exports = { endpoints };
