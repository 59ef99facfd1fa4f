'use strict';

const { Buffer } = require('node:buffer');

/**
 * Customer endpoints as the suite's own HTTP server on [::1] (the notifier is allowed ::1/128 only). The path
 * says how the endpoint behaves: `/ok/<name>` answers 200; `/slow/<name>` after 2 s; `/timeout/<name>` never
 * answers; `/reset/<name>` resets the connection; `/redirect/<name>` answers 302 to `/ok/<name>`;
 * `/fail/<name>` answers 500 while `failing(name)` says so; `/gone/<name>` answers 410 while it is set gone.
 * Only 2xx answers count as delivered: `received` (webhook-id -> deliveries, every endpoint) and
 * `byEndpoint` (name -> webhook-id -> deliveries). Every request's signature is checked with the endpoint's
 * secret once it is known (`setSecret`); a request that fails the check is counted in `badSignatures`.
 */
const http = require('node:http');
const { Webhook } = require('svix');

async function startReceivers() {
  const received = new Map();
  const byEndpoint = new Map();
  const secrets = new Map();
  const failingUntil = new Map();
  const gone = new Set();
  const stats = { requests: 0, badSignatures: 0, byMode: {} };
  const sockets = new Set();

  const deliver = (name, id) => {
    received.set(id, (received.get(id) ?? 0) + 1);
    let m = byEndpoint.get(name);
    if (!m) byEndpoint.set(name, (m = new Map()));
    m.set(id, (m.get(id) ?? 0) + 1);
  };

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      stats.requests += 1;
      const [, mode = '', name = ''] = (req.url ?? '').split('/');
      stats.byMode[mode] = (stats.byMode[mode] ?? 0) + 1;
      const id = req.headers['webhook-id'];
      const body = Buffer.concat(chunks).toString('utf8');
      const secret = secrets.get(name);
      if (secret) {
        try {
          new Webhook(secret).verify(body, {
            'webhook-id': id,
            'webhook-timestamp': req.headers['webhook-timestamp'],
            'webhook-signature': req.headers['webhook-signature'],
          });
        } catch {
          stats.badSignatures += 1;
          res.writeHead(400).end();
          return;
        }
      }
      const ok = () => {
        deliver(name, id);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      };
      switch (mode) {
        case 'ok':
          return ok();
        case 'slow':
          return void setTimeout(ok, 2_000);
        case 'timeout':
          return; // never answered; the notifier's request timeout ends it
        case 'reset':
          return void req.socket.destroy();
        case 'redirect':
          return void res.writeHead(302, { location: `/ok/${name}` }).end();
        case 'fail':
          if (Date.now() < (failingUntil.get(name) ?? 0)) return void res.writeHead(500).end('down');
          return ok();
        case 'gone':
          if (gone.has(name)) return void res.writeHead(410).end();
          return ok();
        default:
          return void res.writeHead(404).end();
      }
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((resolve) => server.listen(0, '::1', resolve));
  const port = server.address().port;
  return {
    port,
    received,
    byEndpoint,
    stats,
    url: (mode, name) => `http://[::1]:${port}/${mode}/${name}`,
    setSecret: (name, secret) => secrets.set(name, secret),
    failFor: (name, ms) => failingUntil.set(name, Date.now() + ms),
    setGone: (name, value) => (value ? gone.add(name) : gone.delete(name)),
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

module.exports = { startReceivers };
