import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Router } from 'express';
import pino from 'pino';
import { createMetricsRegistry } from '@ampflow/observability';
import { createConsoleApp, type ConsoleApp } from '../src/app';
import { createTokenSigner } from '../src/auth/tokens';

/**
 * A portal session's view through the console's proxy, for endpoints that carry an `owner`: what the notifier's
 * admin API answers (owner labels, the message log) stands in here as a small recorded notifier, so that the
 * console's scoping is checked on its own: the owner's rows pass, every other owner's are refused or filtered,
 * and what the console forwards is recorded. The browser test runs the same paths against the real notifier.
 */
const ADMIN = 'portal-scope-admin-token-0123456789abcdef';
const KEY = 'portal-scope-session-key-0123456789abcdef';

type Json = Record<string, unknown>;
const endpoints: Json[] = [
  { id: 'ep_acme', owner: 'acme', url: 'https://acme.example/hooks' },
  { id: 'ep_globex', owner: 'globex', url: 'https://globex.example/hooks' },
  { id: 'ep_none', url: 'https://ops.example/hooks' },
];
const attempts = [
  { messageId: 'msg_1', endpointId: 'ep_acme', attempt: 1, status: 'succeeded' },
  { messageId: 'msg_1', endpointId: 'ep_globex', attempt: 1, status: 'failed' },
  { messageId: 'msg_2', endpointId: 'ep_globex', attempt: 1, status: 'failed' },
];

const endpointsOf = (messageId: string) =>
  attempts
    .filter((a) => a.messageId === messageId)
    .map((a) => ({ endpointId: a.endpointId, status: a.status, attempts: 1 }));

let notifier: Server;
let app: ConsoleApp;
let base: string;
const forwarded: { method: string; url: string; body: string; authorization: string | undefined }[] = [];

const readBody = (req: IncomingMessage) =>
  new Promise<string>((resolve) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => resolve(body));
  });

beforeAll(async () => {
  notifier = createServer(async (req, res) => {
    const body = await readBody(req);
    forwarded.push({ method: req.method!, url: req.url!, body, authorization: req.headers.authorization });
    const url = new URL(req.url!, 'http://notifier');
    const send = (status: number, value: unknown) =>
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
    const one = /^\/v1\/endpoints\/([^/]+)(\/.*)?$/.exec(url.pathname);
    if (req.method === 'GET' && url.pathname === '/v1/endpoints') return send(200, { data: endpoints });
    if (req.method === 'POST' && url.pathname === '/v1/endpoints')
      return send(201, { id: 'ep_new', ...JSON.parse(body) });
    if (one) {
      const endpoint = endpoints.find((e) => e.id === one[1]);
      if (!endpoint) return send(404, { error: { code: 'endpoint_not_found', message: 'no endpoint' } });
      if (!one[2]) return send(200, endpoint);
      if (one[2] === '/attempts')
        return send(200, { data: attempts.filter((a) => a.endpointId === endpoint.id) });
      if (one[2] === '/secret') return send(200, { secret: 'whsec_c2VjcmV0LWZvci10ZXN0cw==' });
      return send(202, { queued: 1 });
    }
    const messageAttempts = /^\/v1\/messages\/([^/]+)\/attempts$/.exec(url.pathname);
    if (messageAttempts)
      return send(200, { data: attempts.filter((a) => a.messageId === messageAttempts[1]) });
    const message = /^\/v1\/messages\/([^/]+)$/.exec(url.pathname);
    if (message && req.method === 'GET') {
      const own = attempts.filter((a) => a.messageId === message[1]);
      return send(200, {
        id: message[1],
        type: 'vehicle.telemetry',
        body: {},
        endpoints: endpointsOf(message[1]!),
        attempts: own,
      });
    }
    if (url.pathname === '/v1/messages') {
      // The notifier's summaries, one entry per endpoint; and a notifier that ignores the filter: the console
      // must filter anyway.
      return send(200, {
        data: ['msg_1', 'msg_2'].map((id) => ({ id, type: 'vehicle.telemetry', endpoints: endpointsOf(id) })),
      });
    }
    if (url.pathname === '/v1/dead-letters')
      return send(200, { data: attempts.map((a) => ({ ...a, reason: 'exhausted' })) });
    return send(202, { queued: 1 });
  });
  await new Promise<void>((resolve) => notifier.listen(0, '127.0.0.1', resolve));
  const registry = createMetricsRegistry('console', { defaultMetrics: false });
  app = createConsoleApp({
    settings: {
      httpPort: 0,
      httpHost: '127.0.0.1',
      notifierUrl: `http://127.0.0.1:${(notifier.address() as AddressInfo).port}`,
      adminToken: ADMIN,
      sessionKey: KEY,
      sessionTtlMs: 60_000,
      portalLinkMaxTtlMs: 3_600_000,
      notifierTimeoutMs: 2_000,
      shutdownDrainMs: 500,
    },
    opsData: { router: Router(), start: async () => {}, stop: async () => {}, ready: () => true },
    logger: pino({ level: 'silent' }),
    registry,
  });
  await app.start();
  base = `http://127.0.0.1:${app.port()}`;
});

afterAll(async () => {
  await app.stop();
  await new Promise((resolve) => notifier.close(resolve));
});

/** Opens a portal link for `owner` and returns a caller with that session's cookie and CSRF token. */
async function portal(owner: string) {
  const link = createTokenSigner(KEY).sign('portal-link', { owner, exp: Date.now() + 60_000 });
  const opened = await fetch(`${base}/portal/${link}`, { redirect: 'manual' });
  expect(opened.status).toBe(303);
  const cookie = opened.headers.getSetCookie()[0]!.split(';')[0]!;
  const shell = await (await fetch(`${base}/`, { headers: { cookie } })).text();
  const csrf = /name="csrf-token" content="([^"]+)"/.exec(shell)![1]!;
  return async (method: string, path: string, body?: unknown) => {
    const answer = await fetch(`${base}${path}`, {
      method,
      headers: { cookie, 'x-csrf-token': csrf, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await answer.text();
    return { status: answer.status, body: text ? (JSON.parse(text) as Json & { data?: Json[] }) : null };
  };
}

describe('a portal session, through the proxy', () => {
  it('lists, reads and acts on its owner’s endpoints only', async () => {
    const call = await portal('acme');
    const list = await call('GET', '/api/v1/endpoints');
    expect(list.body!.data!.map((e) => e.id)).toEqual(['ep_acme']);
    expect(forwarded.at(-1)).toMatchObject({
      url: '/v1/endpoints?owner=acme',
      authorization: `Bearer ${ADMIN}`,
    });
    expect((await call('GET', '/api/v1/endpoints/ep_acme')).status).toBe(200);
    expect((await call('GET', '/api/v1/endpoints/ep_acme/secret')).status).toBe(200);
    expect(
      (await call('POST', '/api/v1/endpoints/ep_acme/recover', { since: '2026-01-01T00:00:00Z' })).status,
    ).toBe(202);
    for (const id of ['ep_globex', 'ep_none', 'ep_missing']) {
      expect({ id, status: (await call('GET', `/api/v1/endpoints/${id}`)).status }).toEqual({
        id,
        status: 404,
      });
      expect({ id, status: (await call('DELETE', `/api/v1/endpoints/${id}`)).status }).toEqual({
        id,
        status: 404,
      });
    }
    expect(forwarded.some((f) => f.method === 'DELETE')).toBe(false);
  });

  it('creates endpoints for its owner only, and cannot hand one to another owner', async () => {
    const call = await portal('acme');
    const created = await call('POST', '/api/v1/endpoints', {
      url: 'https://acme.example/2',
      owner: 'globex',
    });
    expect(created.status).toBe(201);
    expect(JSON.parse(forwarded.at(-1)!.body)).toMatchObject({ owner: 'acme' });
    expect((await call('PATCH', '/api/v1/endpoints/ep_acme', { owner: 'globex' })).status).toBe(403);
    expect((await call('PATCH', '/api/v1/endpoints/ep_acme', { description: 'x' })).status).toBe(200);
  });

  it('sees only its owner’s messages, attempts and dead letters', async () => {
    const call = await portal('acme');
    const messages = await call('GET', '/api/v1/messages?endpointId=ep_acme');
    expect(messages.body!.data).toEqual([
      {
        id: 'msg_1',
        type: 'vehicle.telemetry',
        endpoints: [{ endpointId: 'ep_acme', status: 'succeeded', attempts: 1 }],
      },
    ]);
    expect((await call('GET', '/api/v1/messages')).status).toBe(400);
    expect((await call('GET', '/api/v1/messages?endpointId=ep_globex')).status).toBe(404);
    const one = await call('GET', '/api/v1/messages/msg_1');
    expect((one.body!.attempts as Json[]).map((a) => a.endpointId)).toEqual(['ep_acme']);
    expect((one.body!.endpoints as Json[]).map((e) => e.endpointId)).toEqual(['ep_acme']);
    expect((await call('GET', '/api/v1/messages/msg_2')).status).toBe(404);
    expect(
      (await call('GET', '/api/v1/messages/msg_1/attempts')).body!.data!.map((a) => a.endpointId),
    ).toEqual(['ep_acme']);
    expect((await call('GET', '/api/v1/messages/msg_2/attempts')).status).toBe(404);
    const dead = await call('GET', '/api/v1/dead-letters?endpointId=ep_acme');
    expect(dead.body!.data!.map((d) => d.endpointId)).toEqual(['ep_acme']);
    expect((await call('POST', '/api/v1/messages/msg_1/retry', { endpointId: 'ep_acme' })).status).toBe(202);
    expect((await call('POST', '/api/v1/messages/msg_1/retry', { endpointId: 'ep_globex' })).status).toBe(
      404,
    );
    // Another owner's message is not re-sent to the portal's own endpoint either.
    expect((await call('POST', '/api/v1/messages/msg_2/retry', { endpointId: 'ep_acme' })).status).toBe(404);
    expect(forwarded.some((f) => f.url === '/v1/messages/msg_2/retry')).toBe(false);
    expect((await call('POST', '/api/v1/messages/msg_1/retry', {})).status).toBe(400);
    expect(
      (await call('POST', '/api/v1/messages/retry', { endpointId: 'ep_acme', status: 'failed' })).status,
    ).toBe(202);
    expect((await call('POST', '/api/v1/messages/retry', { status: 'failed' })).status).toBe(400);
  });

  it('is refused the operator’s routes', async () => {
    const call = await portal('acme');
    for (const path of ['/api/ops/trace?vehicle=v', '/api/ops/sessions/open', '/api/ops/pipeline']) {
      expect({ path, status: (await call('GET', path)).status }).toEqual({ path, status: 403 });
    }
    expect((await call('POST', '/api/portal-links', { owner: 'acme' })).status).toBe(403);
  });
});
