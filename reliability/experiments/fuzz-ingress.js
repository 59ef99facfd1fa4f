'use strict';

const { Buffer } = require('node:buffer');

/**
 * Fuzzed requests to the ingress: forged, tampered, stale and missing signatures, signed bodies that are not
 * JSON, not UTF-8, not an object or fail the schema, oversized bodies, odd content types, methods and paths,
 * mixed with correctly signed readings (the control group). A forgery is a request without a valid signature
 * that was answered 2xx or whose id reached the raw topic; every 5xx is unintended (no fault is active); every
 * acknowledged control reading must be stored.
 */
const { randomBytes, randomInt, randomUUID } = require('node:crypto');
const { setTimeout: sleep } = require('node:timers/promises');
const { Pool } = require('undici');
const { smartcarHeaders, svixHeaders } = require('@ampflow/testing');
const { readingBody, randomVin, noteAnswer } = require('../lib/traffic');
const { waitAccounted, row, countBy } = require('../lib/context');

const WRONG_SECRET = `whsec_${randomBytes(24).toString('base64')}`;

function pick(list) {
  return list[randomInt(list.length)];
}

/** One fuzzed request: `{ kind, signed, path, method, headers, body, id }`. */
function fuzzCase(secrets, vehicle) {
  const id = `msg_${randomUUID().replace(/-/g, '')}`;
  const good = readingBody(vehicle, 0, Date.now());
  const sign = (body, opts = {}) => svixHeaders(body, secrets.telematicaWebhookSecret, { id, ...opts });
  const kind = pick([
    'valid',
    'valid',
    'bad-signature',
    'wrong-secret',
    'tampered-body',
    'tampered-id',
    'missing-signature',
    'missing-id',
    'stale-timestamp',
    'future-timestamp',
    'signature-garbage',
    'smartcar-forged',
    'smartcar-unsigned',
    'signed-not-json',
    'signed-not-utf8',
    'signed-not-object',
    'signed-schema-violation',
    'signed-empty',
    'oversized',
    'content-type',
    'method',
    'path',
    'header-noise',
  ]);
  const base = { kind, id, signed: false, method: 'POST', path: '/webhooks/telematica' };
  switch (kind) {
    case 'valid':
      return { ...base, signed: true, headers: sign(good), body: good };
    case 'bad-signature': {
      const h = sign(good);
      h['svix-signature'] = `v1,${randomBytes(32).toString('base64')}`;
      return { ...base, headers: h, body: good };
    }
    case 'wrong-secret':
      return { ...base, headers: svixHeaders(good, WRONG_SECRET, { id }), body: good };
    case 'tampered-body': {
      const h = sign(good);
      return { ...base, headers: h, body: good.replace('"soc":40', '"soc":41') };
    }
    case 'tampered-id': {
      const h = sign(good);
      const other = `msg_${randomUUID().replace(/-/g, '')}`;
      h['svix-id'] = other;
      return { ...base, id: other, headers: h, body: good };
    }
    case 'missing-signature': {
      const h = sign(good);
      delete h['svix-signature'];
      return { ...base, headers: h, body: good };
    }
    case 'missing-id': {
      const h = sign(good);
      delete h['svix-id'];
      return { ...base, headers: h, body: good };
    }
    case 'stale-timestamp':
      return { ...base, headers: sign(good, { timestamp: new Date(Date.now() - 10 * 60_000) }), body: good };
    case 'future-timestamp':
      return { ...base, headers: sign(good, { timestamp: new Date(Date.now() + 10 * 60_000) }), body: good };
    case 'signature-garbage': {
      const h = sign(good);
      h['svix-signature'] = pick([
        '',
        'v1,',
        'v2,abc',
        'v1,%%%%',
        'v1 '.repeat(500),
        randomBytes(64).toString('hex'),
      ]);
      return { ...base, headers: h, body: good };
    }
    case 'smartcar-forged': {
      const body = JSON.stringify({ eventId: id, eventType: 'VEHICLE_STATE', data: {}, meta: {} });
      const h = smartcarHeaders(body, 'not-the-token');
      return { ...base, path: '/webhooks/smartcar', headers: h, body };
    }
    case 'smartcar-unsigned': {
      const body = JSON.stringify({ eventId: id, eventType: 'VEHICLE_STATE', data: {}, meta: {} });
      const h = smartcarHeaders(body, secrets.smartcarManagementToken);
      delete h['sc-signature'];
      return { ...base, path: '/webhooks/smartcar', headers: h, body };
    }
    case 'signed-not-json': {
      const body = good.slice(0, randomInt(1, good.length - 1));
      return { ...base, signed: true, expectReject: true, headers: sign(body), body };
    }
    case 'signed-not-utf8': {
      const body = Buffer.concat([
        Buffer.from(good.slice(0, 20)),
        Buffer.from([0xff, 0xfe, 0xc3]),
        Buffer.from('"}'),
      ]);
      return { ...base, signed: true, expectReject: true, headers: sign(body), body };
    }
    case 'signed-not-object': {
      const body = pick(['[]', '"x"', '42', 'null', 'true', '[{"type":"vehicle.soc"}]']);
      return { ...base, signed: true, expectReject: true, headers: sign(body), body };
    }
    case 'signed-schema-violation': {
      const parsed = JSON.parse(good);
      const mutation = pick(['type', 'vehicleId', 'battery', 'deep']);
      if (mutation === 'type') parsed.type = 42;
      else if (mutation === 'vehicleId') delete parsed.vehicleId;
      else if (mutation === 'battery') parsed.vehicleState.batteryState = 'full';
      else parsed.vehicleState = { batteryState: { soc: 'x'.repeat(1000), lastUpdated: 'yesterday' } };
      const body = JSON.stringify(parsed);
      return { ...base, signed: true, expectReject: true, headers: sign(body), body };
    }
    case 'signed-empty':
      return { ...base, signed: true, expectReject: true, headers: sign(''), body: '' };
    case 'oversized': {
      const body = JSON.stringify({ ...JSON.parse(good), padding: 'x'.repeat(300 * 1024) });
      return { ...base, signed: true, expectReject: true, headers: sign(body), body };
    }
    case 'content-type': {
      const h = sign(good);
      h['content-type'] = pick([
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data',
        '',
        'application/json; charset=latin1',
      ]);
      if (h['content-type'] === '') delete h['content-type'];
      return {
        ...base,
        kind: `content-type ${h['content-type'] ?? '(none)'}`,
        signed: true,
        expectReject: true,
        headers: h,
        body: good,
      };
    }
    case 'method':
      return {
        ...base,
        method: pick(['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']),
        headers: sign(good),
        body: good,
      };
    case 'path': {
      // Correctly signed; a query string on the right route is still that route, so only it may be stored.
      const path = pick([
        '/webhooks/',
        '/webhooks/other',
        '/webhooks/telematica/../smartcar',
        '/%00',
        `/${'a'.repeat(5000)}`,
        '/webhooks/telematica?x=1&x=2',
      ]);
      return {
        ...base,
        kind: path.startsWith('/webhooks/telematica?') ? 'valid-query' : 'path',
        signed: true,
        headers: sign(good),
        body: good,
        path,
      };
    }
    case 'header-noise': {
      // Several signatures (one valid), a long request id, and a content encoding the body does not have.
      const h = sign(good);
      h['svix-signature'] = `${h['svix-signature']} v1,${randomBytes(32).toString('base64')}`.slice(0, 2000);
      h['x-request-id'] = randomBytes(200).toString('hex');
      const encoding = pick(['gzip', 'br', 'identity', 'compress']);
      h['content-encoding'] = encoding;
      return {
        ...base,
        kind: `header-noise-${encoding}`,
        signed: true,
        expectReject: encoding !== 'identity',
        headers: h,
        body: good,
      };
    }
    default:
      throw new Error(kind);
  }
}

async function fuzzIngress(ctx) {
  const total = ctx.full ? 10_000 : 2_000;
  const ledger = ctx.newLedger('fuzz-ingress');
  const pool = new Pool(ctx.platform.ingress.baseUrl, { connections: 8, pipelining: 1 });
  const unsignedIds = [];
  const forgedAccepted = [];
  const rejectedAccepted = [];
  const byKind = {};
  let next = 0;
  const worker = async () => {
    while (next < total) {
      next += 1;
      const vehicle = { id: `rel-fuzz-${randomUUID().slice(0, 12)}`, vin: randomVin() };
      ledger.sentVins.add(vehicle.vin);
      const c = fuzzCase(ctx.secrets, vehicle);
      if (c.headers['svix-signature'])
        ledger.sentSignatures.add(String(c.headers['svix-signature']).replace(/^v1,/, ''));
      if (c.headers['sc-signature']) ledger.sentSignatures.add(c.headers['sc-signature']);
      const t0 = Date.now();
      let status;
      let code;
      try {
        const res = await pool.request({
          path: c.path,
          method: c.method,
          headers: c.headers,
          body: c.method === 'GET' ? undefined : c.body,
          headersTimeout: 20_000,
          bodyTimeout: 20_000,
        });
        const text = await res.body.text();
        status = res.statusCode;
        try {
          code = JSON.parse(text)?.error?.code;
        } catch {
          code = undefined;
        }
        noteAnswer(ledger, status, Date.now() - t0, code);
      } catch (err) {
        status = err.code ?? err.message;
        ledger.answers.errors[status] = (ledger.answers.errors[status] ?? 0) + 1;
      }
      const k = (byKind[c.kind] ??= {});
      k[status] = (k[status] ?? 0) + 1;
      const ok = typeof status === 'number' && status >= 200 && status < 300;
      if (c.kind.startsWith('valid') && c.method === 'POST') {
        ledger.events.set(c.id, {
          id: c.id,
          vehicleId: vehicle.id,
          step: 0,
          acked: ok,
          statuses: [status],
          tag: 'fuzz',
        });
      } else if (!c.signed) {
        unsignedIds.push(c.id);
        if (ok) forgedAccepted.push({ kind: c.kind, status });
      } else if (c.expectReject && ok) {
        rejectedAccepted.push({ kind: c.kind, status });
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  await pool.close().catch(() => {});
  const events = [...ledger.events.values()];
  const { accounting } = await waitAccounted(ctx, events, { timeoutMs: ctx.settleMs, receiver: null });
  await sleep(1_000);
  const forgedStored = unsignedIds.filter((id) => (ctx.tap.counts.raw.get(id) ?? 0) > 0).length;
  const fiveXx = ledger.answers.fiveXx;
  accounting.tried = total;
  return row('fuzz-ingress', {
    accounting,
    unintended5xx: fiveXx.length,
    forgeries: forgedAccepted.length + forgedStored,
    slowestMs: ledger.answers.slowestMs,
    details: {
      requests: total,
      controlReadings: events.length,
      answers: ledger.answers.byStatus,
      connectionErrors: ledger.answers.errors,
      fiveXxCodes: countBy(fiveXx.map((a) => `${a.status} ${a.code ?? ''}`)),
      forgedAccepted: forgedAccepted.slice(0, 20),
      forgedStored,
      badInputAccepted: rejectedAccepted.length,
      badInputAcceptedKinds: countBy(rejectedAccepted.map((r) => r.kind)),
      byKind,
    },
  });
}

module.exports = { 'fuzz-ingress': fuzzIngress };
