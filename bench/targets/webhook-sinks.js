'use strict';

/**
 * Webhook sinks of the notifier and e2e benches: BENCH_SINK_COUNT HTTP servers on 127.0.0.1 (free ports) in
 * this one child process (forked with an IPC channel by lib/sinks.js), so their work does not share the bench
 * process's event loop (which produces at a fixed rate and polls) and their CPU is accounted separately.
 *
 * A delivery goes to `/<mode>/<endpoint>` (mode: `n` notifier, `p` plain forwarder, `e` e2e); each is read
 * whole and answered 204. Per mode and endpoint it is counted by `webhook-id` (a repeat is a duplicate). Every
 * 100th delivery of a mode whose secrets are known is verified with svix's `Webhook` (sampled, so that the
 * HMAC does not dominate the sinks' cost). With a latency window set, `occurredAt` of the body (telemetry) is
 * read with a regex and arrival - occurredAt kept; with capture on, the body is parsed and kept (e2e sessions).
 *
 * IPC requests (`{ id, type, ... }`, answered `{ id, result }`): `secrets` { mode, secrets: [whsec per
 * endpoint] }, `latency` { mode, sinceMs }, `capture` { mode }, `report` { mode, light } (light: counts only), `reset` { mode }.
 */
const http = require('node:http');
const { Buffer } = require('node:buffer');
const { Webhook } = require('svix');

const count = Number(process.env.BENCH_SINK_COUNT || 10);
const VERIFY_EVERY = 100;
const OCCURRED_AT = /"occurredAt":"([^"]+)"/;

const modes = new Map();

function modeOf(name) {
  let m = modes.get(name);
  if (!m) {
    m = {
      seen: Array.from({ length: count }, () => new Map()),
      deliveries: 0,
      duplicates: 0,
      firstAt: undefined,
      lastAt: undefined,
      verifiers: undefined,
      verified: 0,
      verifyFailed: 0,
      verifyErrors: [],
      missingId: 0,
      latencySinceMs: undefined,
      latenciesMs: [],
      capture: false,
      captured: [],
    };
    modes.set(name, m);
  }
  return m;
}

function handle(req, res) {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const at = Date.now();
    const [, modeName, index] = req.url.split('/');
    const endpoint = Number(index);
    if (!modeName || !(endpoint >= 0 && endpoint < count)) {
      res.writeHead(404).end();
      return;
    }
    const m = modeOf(modeName);
    const id = req.headers['webhook-id'];
    m.deliveries += 1;
    m.firstAt ??= at;
    m.lastAt = at;
    if (typeof id !== 'string') m.missingId += 1;
    else {
      const seen = m.seen[endpoint];
      const n = seen.get(id);
      if (n === undefined) seen.set(id, 1);
      else {
        seen.set(id, n + 1);
        m.duplicates += 1;
      }
    }
    const needsBody =
      m.capture || m.latencySinceMs !== undefined || (m.verifiers && m.deliveries % VERIFY_EVERY === 0);
    if (needsBody) {
      const body = Buffer.concat(chunks).toString('utf8');
      if (m.verifiers && m.deliveries % VERIFY_EVERY === 0) {
        try {
          m.verifiers[endpoint].verify(body, req.headers);
          m.verified += 1;
        } catch (err) {
          m.verifyFailed += 1;
          if (m.verifyErrors.length < 5) m.verifyErrors.push(String(err.message ?? err));
        }
      }
      if (m.latencySinceMs !== undefined) {
        const match = OCCURRED_AT.exec(body);
        const occurred = match ? Date.parse(match[1]) : NaN;
        if (occurred >= m.latencySinceMs) m.latenciesMs.push(at - occurred);
      }
      if (m.capture) {
        try {
          const parsed = JSON.parse(body);
          m.captured.push({ endpoint, id, at, type: parsed.type, data: parsed.data });
        } catch {
          m.captured.push({ endpoint, id, at, unparsable: true });
        }
      }
    }
    res.writeHead(204).end();
  });
}

function report(name, light) {
  const m = modeOf(name);
  return {
    deliveries: m.deliveries,
    duplicates: m.duplicates,
    distinctPerEndpoint: m.seen.map((s) => s.size),
    firstAt: m.firstAt,
    lastAt: m.lastAt,
    verified: m.verified,
    verifyFailed: m.verifyFailed,
    verifyErrors: m.verifyErrors,
    missingId: m.missingId,
    latencySamples: m.latenciesMs.length,
    latenciesMs: light ? undefined : m.latenciesMs,
    captured: light ? undefined : m.captured,
  };
}

const requests = {
  secrets: ({ mode, secrets }) => {
    modeOf(mode).verifiers = secrets.map((s) => new Webhook(s));
    return true;
  },
  latency: ({ mode, sinceMs }) => {
    modeOf(mode).latencySinceMs = sinceMs;
    return true;
  },
  capture: ({ mode }) => {
    modeOf(mode).capture = true;
    return true;
  },
  report: ({ mode, light }) => report(mode, light),
  /** Forgets everything received under `mode` (keeps its capture flag and verifiers). */
  reset: ({ mode }) => {
    const old = modes.get(mode);
    modes.delete(mode);
    const m = modeOf(mode);
    m.capture = old?.capture ?? false;
    m.verifiers = old?.verifiers;
    return true;
  },
};

process.on('message', (msg) => {
  const fn = requests[msg.type];
  process.send({ id: msg.id, result: fn ? fn(msg) : undefined, error: fn ? undefined : 'unknown' });
});

async function start() {
  const ports = [];
  for (let i = 0; i < count; i++) {
    const server = http.createServer({ keepAliveTimeout: 60_000 }, handle);
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    ports.push(server.address().port);
  }
  process.send({ type: 'ready', ports });
}

process.once('SIGTERM', () => process.exit(0));
process.once('SIGINT', () => process.exit(0));
process.once('disconnect', () => process.exit(0));
start().catch((err) => {
  process.stderr.write(`webhook-sinks: ${err.stack ?? err}\n`);
  process.exit(1);
});
