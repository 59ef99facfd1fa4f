'use strict';

const { Buffer } = require('node:buffer');

/**
 * Fuzzed requests to the notifier's admin API: missing, wrong and malformed tokens; endpoint bodies with wrong
 * types, bad URLs, out-of-range values, bad JSON, wrong media types and oversized bodies; odd routes and methods;
 * and SSRF targets: private, loopback, link-local, CGNAT and IPv4-mapped addresses in every spelling, plus DNS
 * names that resolve to 127.0.0.1 (`localhost` and this machine's names in /etc/hosts; the notifier here allows
 * ::1 only, so 127.0.0.1 is a private address it must refuse). A forgery is a request without the right token
 * answered 2xx, an IP-literal private target accepted, or any request reaching the 127.0.0.1 listener that the
 * DNS-name endpoints point at (readings are sent to make the notifier try). Every 5xx is unintended.
 */
const http = require('node:http');
const os = require('node:os');
const { randomBytes, randomInt, randomUUID } = require('node:crypto');
const { setTimeout: sleep } = require('node:timers/promises');
const { drive } = require('../lib/traffic');
const { row, countBy } = require('../lib/context');

function pick(list) {
  return list[randomInt(list.length)];
}

const PRIVATE_LITERALS = [
  'http://10.0.0.1/',
  'http://10.255.255.254:8080/x',
  'http://172.16.0.1/',
  'http://172.31.255.1/',
  'http://192.168.1.1/',
  'http://169.254.169.254/latest/meta-data/',
  'http://100.64.0.1/',
  'http://127.0.0.1:1/',
  'http://127.0.0.2/',
  'http://127.1/',
  'http://0.0.0.0/',
  'http://0/',
  'http://2130706433/',
  'http://0x7f000001/',
  'http://0177.0.0.1/',
  'http://167772161/',
  'http://[::ffff:127.0.0.1]/',
  'http://[::ffff:a00:1]/',
  'http://[fe80::1]/',
  'http://[fc00::1]/',
  'http://[fd12:3456::1]/',
  'http://[::]/',
  'http://[::127.0.0.1]/',
  'http://192.0.0.1/',
  'http://198.18.0.1/',
  'http://224.0.0.1/',
  'http://255.255.255.255/',
  'https://10.0.0.1/',
  'http://user:pass@10.0.0.1/',
];

function endpointBody(kind) {
  const valid = {
    url: 'http://[::1]:9/admin-fuzz',
    eventTypes: ['vehicle.telemetry'],
    providers: ['smartcar'],
  };
  switch (kind) {
    case 'bad-url':
      return {
        ...valid,
        url: pick([
          '',
          'ftp://[::1]/',
          'javascript:alert(1)',
          'file:///etc/passwd',
          'not a url',
          'http://',
          '//[::1]/x',
          'gopher://[::1]:70/',
          `http://[::1]/${'x'.repeat(70_000)}`,
          42,
          null,
        ]),
      };
    case 'bad-types':
      return pick([
        { ...valid, eventTypes: 'vehicle.telemetry' },
        { ...valid, eventTypes: [42] },
        { ...valid, eventTypes: ['no.such.type'] },
        { ...valid, vehicleIds: {} },
        { ...valid, providers: ['nobody'] },
        { ...valid, enabled: 'yes' },
        { ...valid, description: { a: 1 } },
        { ...valid, throttleRate: pick([0, -1, 10_001, 1.5, '10', 1e308]) },
        { ...valid, secret: pick(['short', 'whsec_', 'whsec_!!!!', 'x'.repeat(5000)]) },
        { ...valid, __proto__: { polluted: true }, constructor: { prototype: { polluted: true } } },
        [],
        'string',
        null,
        { url: valid.url, eventTypes: Array.from({ length: 10_000 }, () => 'vehicle.telemetry') },
      ]);
    default:
      return valid;
  }
}

/** A listener on 127.0.0.1 that counts every connection (the DNS-name endpoints point at it). */
async function startTrap() {
  const stats = { connections: 0, requests: 0 };
  const server = http.createServer((req, res) => {
    stats.requests += 1;
    res.writeHead(200).end();
  });
  server.on('connection', () => (stats.connections += 1));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: server.address().port, stats, close: () => new Promise((r) => server.close(() => r())) };
}

async function fuzzAdmin(ctx) {
  const total = ctx.full ? 2_000 : 400;
  const trap = await startTrap();
  const created = [];
  const forgeries = [];
  const fiveXx = [];
  const byKind = {};
  let slowestMs = 0;
  let answered2xx = 0;
  const names = ['localhost', 'localhost.', 'LOCALHOST', os.hostname(), 'runsc', 'vm', 'ip6-localhost'];
  const nameUrls = [...new Set(names)].map((n) => `http://${n}:${trap.port}/ssrf`);
  let sent = 0;
  const one = async () => {
    const kind = pick([
      'no-token',
      'wrong-token',
      'malformed-token',
      'valid-create',
      'bad-url',
      'bad-types',
      'bad-json',
      'media-type',
      'oversized',
      'route',
      'ssrf-literal',
      'ssrf-literal',
      'ssrf-name',
    ]);
    let method = 'POST';
    let route = '/v1/endpoints';
    let body;
    let raw;
    let token;
    let headers = {};
    let expectAuthFail = false;
    let privateTarget = false;
    switch (kind) {
      case 'no-token':
        token = null;
        expectAuthFail = true;
        method = pick(['GET', 'POST', 'DELETE']);
        route = pick(['/v1/endpoints', '/v1/dead-letters', `/v1/endpoints/${ctx.endpoint.id}/secret`]);
        body = method === 'POST' ? endpointBody('valid') : undefined;
        break;
      case 'wrong-token':
        token = pick([
          `${ctx.secrets.notifierAdminToken}x`,
          ctx.secrets.notifierAdminToken.slice(0, -1),
          randomBytes(16).toString('hex'),
          ctx.secrets.notifierAdminToken.toUpperCase(),
        ]);
        expectAuthFail = true;
        route = pick(['/v1/endpoints', `/v1/endpoints/${ctx.endpoint.id}/secret`]);
        method = route.endsWith('secret') ? 'GET' : 'POST';
        body = method === 'POST' ? endpointBody('valid') : undefined;
        break;
      case 'malformed-token':
        token = null;
        headers = {
          authorization: pick([
            `bearer${ctx.secrets.notifierAdminToken}`,
            `Basic ${Buffer.from(`a:${ctx.secrets.notifierAdminToken}`).toString('base64')}`,
            `Bearer ${ctx.secrets.notifierAdminToken} extra`,
            'Bearer',
            `Token ${ctx.secrets.notifierAdminToken}`,
            `Bearer  ${'x'.repeat(9000)}`,
          ]),
        };
        expectAuthFail = true;
        method = 'GET';
        route = `/v1/endpoints/${ctx.endpoint.id}/secret`;
        break;
      case 'valid-create':
      case 'bad-url':
      case 'bad-types':
        body = endpointBody(kind);
        break;
      case 'bad-json':
        raw = pick([
          '{',
          '{"url":',
          '{"url":"http://[::1]/"',
          'null',
          '\u0000',
          '{"url":"\ud800"}',
          '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]',
        ]);
        headers = { 'content-type': 'application/json' };
        break;
      case 'media-type':
        raw = JSON.stringify(endpointBody('valid'));
        headers = {
          'content-type': pick([
            'text/plain',
            'application/x-www-form-urlencoded',
            'application/xml',
            'multipart/form-data; boundary=x',
          ]),
        };
        break;
      case 'oversized':
        raw = JSON.stringify({ ...endpointBody('valid'), description: 'x'.repeat(70 * 1024) });
        headers = { 'content-type': 'application/json' };
        break;
      case 'route':
        method = pick(['GET', 'PATCH', 'DELETE', 'POST', 'PUT']);
        route = pick([
          `/v1/endpoints/${randomUUID()}`,
          '/v1/endpoints/..%2f..%2fetc',
          `/v1/messages/${randomUUID()}/attempts`,
          `/v1/messages/msg_${'a'.repeat(32)}/retry`,
          `/v1/endpoints/${randomUUID()}/recover`,
          '/v1/dead-letters?limit=-1',
          '/v1/dead-letters?limit=99999',
          '/v1/dead-letters?endpointId=%00',
          `/v1/endpoints/${ctx.endpoint.id}/attempts?limit=abc`,
          '/v1/',
          '/v2/endpoints',
          `/v1/endpoints/${'x'.repeat(3000)}`,
        ]);
        body = ['PATCH', 'POST', 'PUT'].includes(method)
          ? pick([
              {},
              { since: 'tomorrow' },
              { since: new Date(Date.now() + 86_400_000).toISOString() },
              { enabled: 'no' },
              { url: pick(PRIVATE_LITERALS) },
            ])
          : undefined;
        if (method === 'PATCH' && body?.url) privateTarget = true;
        break;
      case 'ssrf-literal':
        body = { ...endpointBody('valid'), url: pick(PRIVATE_LITERALS) };
        privateTarget = true;
        break;
      case 'ssrf-name':
        // Subscribed to what the readings below make, so an accepted one is really tried.
        body = { url: pick(nameUrls), eventTypes: ['vehicle.telemetry'], providers: ['telematica'] };
        break;
      default:
        throw new Error(kind);
    }
    const t0 = Date.now();
    let res;
    try {
      res = await ctx.admin(method, route, body, {
        token: token === undefined ? ctx.secrets.notifierAdminToken : token,
        headers,
        raw,
      });
    } catch (err) {
      res = { status: err.name === 'TimeoutError' ? 'timeout' : (err.cause?.code ?? err.message) };
    }
    slowestMs = Math.max(slowestMs, Date.now() - t0);
    const k = (byKind[kind] ??= {});
    k[res.status] = (k[res.status] ?? 0) + 1;
    const ok = typeof res.status === 'number' && res.status >= 200 && res.status < 300;
    if (typeof res.status !== 'number' || res.status >= 500)
      fiveXx.push(`${kind} ${method} ${route.slice(0, 60)} -> ${res.status} ${res.json?.error?.code ?? ''}`);
    if (ok) answered2xx += 1;
    if (ok && expectAuthFail) forgeries.push(`${kind}: ${method} ${route} answered ${res.status}`);
    if (ok && privateTarget) forgeries.push(`${kind}: ${JSON.stringify(body?.url)} accepted (${res.status})`);
    if (res.status === 201 && res.json?.id) {
      created.push(res.json.id);
      // Accepted private literal targets never get traffic: disabled at once (and the filters match nothing).
      if (privateTarget) await ctx.admin('PATCH', `/v1/endpoints/${res.json.id}`, { enabled: false });
    }
  };
  const workers = Array.from({ length: 4 }, async () => {
    while (sent < total) {
      sent += 1;
      await one();
    }
  });
  await Promise.all(workers);
  // Make the notifier try the DNS-name endpoints: readings it will route to them.
  const ledger = ctx.newLedger('fuzz-admin');
  await drive({
    baseUrl: ctx.platform.ingress.baseUrl,
    secret: ctx.secrets.telematicaWebhookSecret,
    ledger,
    vehicles: 5,
    rate: 10,
    tag: 'fuzz-admin',
  });
  await sleep(ctx.full ? 30_000 : 15_000);
  for (const id of created) await ctx.admin('DELETE', `/v1/endpoints/${id}`);
  await trap.close();
  if (trap.stats.connections > 0)
    forgeries.push(
      `${trap.stats.connections} connections reached the 127.0.0.1 listener behind the DNS names`,
    );
  const r = row('fuzz-admin', {
    accounting: {
      tried: total,
      acknowledged: answered2xx,
      stored: created.length,
      lost: 0,
      duplicatedKafka: 0,
      duplicatedDelivered: 0,
    },
    unintended5xx: fiveXx.length,
    forgeries: forgeries.length,
    slowestMs,
    details: {
      byKind,
      fiveXx: countBy(fiveXx),
      forgeries: forgeries.slice(0, 30),
      endpointsCreated: created.length,
      dnsNames: nameUrls,
      trap: trap.stats,
    },
  });
  r.stored = `${created.length} endpoints`;
  return r;
}

module.exports = { 'fuzz-admin': fuzzAdmin };
