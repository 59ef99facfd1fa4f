import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { createMetricsRegistry } from '@ampflow/observability';
import { AppError, ValidationError } from '@ampflow/runtime';
import { createHttpApp } from '@ampflow/runtime/http';
import { createAdminRouter } from '../src/admin/admin-router';
import type { AttemptView, DeadLetterView, DeliveryControl } from '../src/admin/delivery-control';
import { isValidSecret } from '../src/endpoints/model';
import { createEndpointStoreOn, createMemoryEndpointTable, type EndpointStore } from '../src/endpoints/store';

/**
 * The admin API over HTTP on loopback, with the real router and store logic on an in-memory table and a fake
 * delivery engine (the Kafka side of the store is covered by endpoint-store.test.ts).
 */
const logger = pino({ level: process.env.AMPFLOW_TEST_LOG ?? 'silent' });
const TOKEN = 'test-admin-token-0123456789';
const NOW = Date.parse('2025-03-01T12:00:00Z');
const SECRET = `whsec_${Buffer.alloc(32, 9).toString('base64')}`;

const anAttempt = (messageId: string, endpointId: string): AttemptView => ({
  messageId,
  endpointId,
  eventType: 'charging_session.ended',
  attempt: 1,
  status: 'failed',
  httpStatus: 500,
  durationMs: 12,
  responseExcerpt: 'oops',
  error: null,
  at: new Date(NOW).toISOString(),
  next: 'retry',
  nextAttemptAt: new Date(NOW + 5_000).toISOString(),
});

/** Records what the router asked of it and answers from small in-memory facts. */
function aFakeDelivery() {
  const calls: Array<[string, ...unknown[]]> = [];
  const knownMessages = new Set(['msg_known']);
  const deadLetter: DeadLetterView = {
    messageId: 'msg_known',
    endpointId: 'ep_x',
    eventType: 'vehicle.error',
    reason: 'exhausted',
    lastStatus: 503,
    lastError: null,
    failedAt: new Date(NOW).toISOString(),
    attempts: 8,
  };
  const delivery: DeliveryControl = {
    async attemptsForEndpoint(endpointId, limit) {
      calls.push(['attemptsForEndpoint', endpointId, limit]);
      return [anAttempt('msg_known', endpointId)];
    },
    async attemptsForMessage(messageId) {
      calls.push(['attemptsForMessage', messageId]);
      return knownMessages.has(messageId) ? [anAttempt(messageId, 'ep_x')] : [];
    },
    async retryMessage(messageId, endpointId) {
      calls.push(['retryMessage', messageId, endpointId]);
      if (!knownMessages.has(messageId))
        throw new AppError('message_not_found', `no message ${messageId}`, false, 404);
      return { queued: 1 };
    },
    async recover(endpointId, sinceMs) {
      calls.push(['recover', endpointId, sinceMs]);
      return { queued: 3 };
    },
    async deadLetters(filter) {
      calls.push(['deadLetters', filter]);
      return [deadLetter];
    },
  };
  return { delivery, calls };
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  text: string;
}

let server: Server;
let port: number;
let endpoints: EndpointStore;
let fake: ReturnType<typeof aFakeDelivery>;

beforeEach(async () => {
  endpoints = createEndpointStoreOn(createMemoryEndpointTable(), { logger });
  await endpoints.start();
  fake = aFakeDelivery();
  const router = createAdminRouter({
    token: TOKEN,
    endpoints,
    delivery: fake.delivery,
    now: () => NOW,
    checkUrl: (url) => {
      if (new URL(url).hostname === '169.254.169.254')
        throw new ValidationError('destination_refused', 'cloud metadata address');
    },
    logger,
  });
  const app = createHttpApp({
    logger,
    registry: createMetricsRegistry('notifier-admin-test', { defaultMetrics: false }),
    readiness: () => ({ endpoints: endpoints.ready() }),
    routes: (a) => a.use('/v1', router),
  });
  server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  port = (server.address() as AddressInfo).port;
});

afterEach(async () => {
  await new Promise((resolve) => server.close(resolve));
  await endpoints.stop();
});

function call(
  method: string,
  path: string,
  options: { body?: unknown; raw?: string; token?: string | null; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const token = options.token === undefined ? TOKEN : options.token;
  const payload = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  const headers: Record<string, string> = {
    ...(token !== null && { authorization: `Bearer ${token}` }),
    ...(payload !== undefined && {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(payload)),
    }),
    ...options.headers,
  };
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown;
        try {
          body = text ? JSON.parse(text) : undefined;
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

async function anEndpoint(body: Record<string, unknown> = {}): Promise<Answer> {
  const answer = await call('POST', '/v1/endpoints', {
    body: { url: 'https://hooks.example.com/ev', ...body },
  });
  expect(answer.status).toBe(201);
  return answer;
}

describe('admin API: authentication', () => {
  it.each([
    ['no Authorization header', null, undefined],
    ['a wrong token', 'not-the-token', undefined],
    ['a token that is a prefix of the right one', TOKEN.slice(0, -1), undefined],
    ['another scheme', null, { authorization: `Basic ${TOKEN}` }],
  ])('refuses %s with 401 and WWW-Authenticate: Bearer', async (_what, token, headers) => {
    const answer = await call('GET', '/v1/endpoints', { token, headers });
    expect(answer.status).toBe(401);
    expect(answer.headers['www-authenticate']).toBe('Bearer');
    expect(answer.body).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
  });

  it('refuses before looking at the route or the body', async () => {
    const answer = await call('POST', '/v1/endpoints', { token: 'wrong', raw: '{not json' });
    expect(answer.status).toBe(401);
    expect((await call('GET', '/v1/nothing-here', { token: null })).status).toBe(401);
  });

  it('accepts the right token, case-insensitive scheme', async () => {
    expect((await call('GET', '/v1/endpoints')).status).toBe(200);
    const lower = await call('GET', '/v1/endpoints', {
      token: null,
      headers: { authorization: `bearer ${TOKEN}` },
    });
    expect(lower.status).toBe(200);
  });

  it('leaves the ops routes open', async () => {
    expect((await call('GET', '/healthz', { token: null })).status).toBe(200);
  });
});

describe('admin API: endpoints', () => {
  it('create returns the endpoint and its generated secret once; reads never show it', async () => {
    const created = await anEndpoint({ eventTypes: ['charging_session.started'], description: 'fleet A' });
    const { secret, ...view } = created.body;
    expect(isValidSecret(secret)).toBe(true);
    expect(view).toEqual({
      id: expect.stringMatching(/^ep_[a-z2-7]{26}$/),
      url: 'https://hooks.example.com/ev',
      description: 'fleet A',
      owner: null,
      eventTypes: ['charging_session.started'],
      vehicleIds: [],
      userIds: [],
      providers: [],
      throttleRate: null,
      enabled: true,
      disabledReason: null,
      disabledAt: null,
      createdAt: new Date(NOW).toISOString(),
      updatedAt: new Date(NOW).toISOString(),
    });
    expect(created.headers.location).toBe(`/v1/endpoints/${view.id}`);

    const one = await call('GET', `/v1/endpoints/${view.id}`);
    expect(one.status).toBe(200);
    expect(one.body).toEqual(view);
    const list = await call('GET', '/v1/endpoints');
    expect(list.body).toEqual({ data: [view] });
    for (const text of [one.text, list.text]) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain('whsec_');
    }

    const shown = await call('GET', `/v1/endpoints/${view.id}/secret`);
    expect(shown.status).toBe(200);
    expect(shown.body).toEqual({ secret });
  });

  it('keeps a secret given at create', async () => {
    const created = await anEndpoint({ secret: SECRET });
    expect(created.body.secret).toBe(SECRET);
    expect((await call('GET', `/v1/endpoints/${created.body.id}/secret`)).body).toEqual({ secret: SECRET });
  });

  it('rotation returns a new secret, which GET .../secret then shows', async () => {
    const created = await anEndpoint({ secret: SECRET });
    const rotated = await call('POST', `/v1/endpoints/${created.body.id}/secret/rotate`);
    expect(rotated.status).toBe(200);
    expect(isValidSecret(rotated.body.secret)).toBe(true);
    expect(rotated.body.secret).not.toBe(SECRET);
    expect((await call('GET', `/v1/endpoints/${created.body.id}/secret`)).body).toEqual({
      secret: rotated.body.secret,
    });
    expect(endpoints.get(created.body.id)?.secrets.previous).toEqual({ secret: SECRET, rotatedAt: NOW });
  });

  it('patch changes the given fields; enabled false then true', async () => {
    const { id } = (await anEndpoint()).body;
    const patched = await call('PATCH', `/v1/endpoints/${id}`, {
      body: { description: 'new', vehicleIds: ['veh-1'], throttleRate: 20, enabled: false },
    });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({
      id,
      url: 'https://hooks.example.com/ev',
      description: 'new',
      vehicleIds: ['veh-1'],
      throttleRate: 20,
      enabled: false,
      disabledReason: 'manual',
      disabledAt: new Date(NOW).toISOString(),
    });
    expect(patched.body.secret).toBeUndefined();
    const enabled = await call('PATCH', `/v1/endpoints/${id}`, { body: { enabled: true } });
    expect(enabled.body).toMatchObject({ enabled: true, disabledReason: null, disabledAt: null });
  });

  it('delete answers 204, then the endpoint is gone', async () => {
    const { id } = (await anEndpoint()).body;
    const deleted = await call('DELETE', `/v1/endpoints/${id}`);
    expect(deleted.status).toBe(204);
    expect(deleted.text).toBe('');
    expect((await call('GET', `/v1/endpoints/${id}`)).status).toBe(404);
    expect((await call('GET', '/v1/endpoints')).body).toEqual({ data: [] });
  });

  it.each([
    ['GET', ''],
    ['PATCH', ''],
    ['DELETE', ''],
    ['GET', '/secret'],
    ['POST', '/secret/rotate'],
    ['GET', '/attempts'],
    ['POST', '/recover'],
  ])('%s /v1/endpoints/:id%s answers 404 endpoint_not_found for an unknown id', async (method, suffix) => {
    const answer = await call(method, `/v1/endpoints/ep_aaaaaaaaaaaaaaaaaaaaaaaaaa${suffix}`, {
      body:
        method === 'PATCH'
          ? { description: 'x' }
          : method === 'POST'
            ? { since: '2025-01-01T00:00:00Z' }
            : undefined,
    });
    expect(answer.status).toBe(404);
    expect(answer.body.error.code).toBe('endpoint_not_found');
  });
});

describe('admin API: validation', () => {
  it.each([
    ['a missing url', {}, 'url: is required'],
    ['a non-http url', { url: 'ftp://x.example.com' }, 'url: must be an http(s) URL'],
    [
      'an unknown event type',
      { url: 'https://a.example.com', eventTypes: ['x.y'] },
      'eventTypes.0: unknown event type "x.y"',
    ],
    ['a bad secret', { url: 'https://a.example.com', secret: 'hunter2' }, 'secret: must be whsec_'],
    [
      'a throttleRate of 0',
      { url: 'https://a.example.com', throttleRate: 0 },
      'throttleRate: must be positive',
    ],
    ['an unknown field', { url: 'https://a.example.com', colour: 'red' }, 'unknown field(s): colour'],
  ])('create refuses %s with 400 naming the field', async (_what, body, message) => {
    const answer = await call('POST', '/v1/endpoints', { body });
    expect(answer.status).toBe(400);
    expect(answer.body.error.code).toBe('invalid_request');
    expect(answer.body.error.message).toContain(message);
  });

  it('create refuses a URL the SSRF policy refuses, and creates nothing', async () => {
    const answer = await call('POST', '/v1/endpoints', { body: { url: 'http://169.254.169.254/latest' } });
    expect(answer.status).toBe(400);
    expect(answer.body.error.code).toBe('destination_refused');
    expect(endpoints.list()).toEqual([]);
  });

  it('patch refuses the secret, bad fields and refused URLs', async () => {
    const { id } = (await anEndpoint()).body;
    const secret = await call('PATCH', `/v1/endpoints/${id}`, { body: { secret: SECRET } });
    expect(secret.status).toBe(400);
    expect(secret.body.error.message).toContain('unknown field(s): secret');
    const rate = await call('PATCH', `/v1/endpoints/${id}`, { body: { throttleRate: 'fast' } });
    expect(rate.status).toBe(400);
    expect(rate.body.error.message).toContain('throttleRate: ');
    const url = await call('PATCH', `/v1/endpoints/${id}`, { body: { url: 'https://169.254.169.254/' } });
    expect(url.body.error.code).toBe('destination_refused');
    expect(endpoints.get(id)?.url).toBe('https://hooks.example.com/ev');
  });

  it('answers 400 invalid_json for a malformed body, 415 for a non-JSON one, 413 over 64 KiB', async () => {
    const malformed = await call('POST', '/v1/endpoints', { raw: '{"url": ' });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.code).toBe('invalid_json');
    const form = await call('POST', '/v1/endpoints', {
      raw: 'url=https://a.example.com',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(form.status).toBe(415);
    expect(form.body.error.code).toBe('unsupported_media_type');
    const huge = await call('POST', '/v1/endpoints', {
      body: { url: 'https://a.example.com', description: 'x'.repeat(70_000) },
    });
    expect(huge.status).toBe(413);
    expect(huge.body.error.code).toBe('payload_too_large');
  });

  it('a JSON body that is not an object is refused', async () => {
    const answer = await call('POST', '/v1/endpoints', { body: ['https://a.example.com'] });
    expect(answer.status).toBe(400);
    expect(answer.body.error.code).toBe('invalid_request');
  });
});

describe('admin API: attempts, retries, recovery, dead letters', () => {
  it('lists attempts per endpoint with a bounded limit', async () => {
    const { id } = (await anEndpoint()).body;
    const answer = await call('GET', `/v1/endpoints/${id}/attempts?limit=5`);
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ data: [anAttempt('msg_known', id)] });
    expect(fake.calls).toContainEqual(['attemptsForEndpoint', id, 5]);
    expect((await call('GET', `/v1/endpoints/${id}/attempts`)).status).toBe(200);
    expect(fake.calls).toContainEqual(['attemptsForEndpoint', id, 100]);
    for (const bad of ['0', '1001', 'ten', '2.5']) {
      const refused = await call('GET', `/v1/endpoints/${id}/attempts?limit=${bad}`);
      expect(refused.status).toBe(400);
      expect(refused.body.error.message).toMatch(/^limit: /);
    }
  });

  it('lists attempts per message; a message without attempts has an empty list', async () => {
    expect((await call('GET', '/v1/messages/msg_known/attempts')).body).toEqual({
      data: [anAttempt('msg_known', 'ep_x')],
    });
    expect((await call('GET', '/v1/messages/msg_unknown/attempts')).body).toEqual({ data: [] });
  });

  it('retries a message, optionally for one endpoint; 404 for unknown messages and endpoints', async () => {
    const { id } = (await anEndpoint()).body;
    const all = await call('POST', '/v1/messages/msg_known/retry');
    expect(all.status).toBe(202);
    expect(all.body).toEqual({ queued: 1 });
    const one = await call('POST', '/v1/messages/msg_known/retry', { body: { endpointId: id } });
    expect(one.status).toBe(202);
    expect(fake.calls).toEqual([
      ['retryMessage', 'msg_known', undefined],
      ['retryMessage', 'msg_known', id],
    ]);
    const unknownMessage = await call('POST', '/v1/messages/msg_unknown/retry');
    expect(unknownMessage.status).toBe(404);
    expect(unknownMessage.body.error.code).toBe('message_not_found');
    const unknownEndpoint = await call('POST', '/v1/messages/msg_known/retry', {
      body: { endpointId: 'ep_bbbbbbbbbbbbbbbbbbbbbbbbbb' },
    });
    expect(unknownEndpoint.status).toBe(404);
    expect(unknownEndpoint.body.error.code).toBe('endpoint_not_found');
  });

  it('recovers an endpoint since a past time', async () => {
    const { id } = (await anEndpoint()).body;
    const answer = await call('POST', `/v1/endpoints/${id}/recover`, {
      body: { since: '2025-03-01T08:00:00+01:00' },
    });
    expect(answer.status).toBe(202);
    expect(answer.body).toEqual({ queued: 3 });
    expect(fake.calls).toEqual([['recover', id, Date.parse('2025-03-01T07:00:00Z')]]);
  });

  it.each([
    ['no since', {}, 'since: '],
    ['a since that is not a time', { since: 'yesterday' }, 'since: must be an ISO-8601 time'],
    ['a since in the future', { since: '2025-03-02T00:00:00Z' }, 'since: must not be in the future'],
  ])('recover refuses %s', async (_what, body, message) => {
    const { id } = (await anEndpoint()).body;
    const answer = await call('POST', `/v1/endpoints/${id}/recover`, { body });
    expect(answer.status).toBe(400);
    expect(answer.body.error.message).toContain(message);
    expect(fake.calls).toEqual([]);
  });

  it('recover refuses a disabled endpoint with 409 until it is enabled again', async () => {
    const { id } = (await anEndpoint({ enabled: false })).body;
    const refused = await call('POST', `/v1/endpoints/${id}/recover`, {
      body: { since: '2025-03-01T00:00:00Z' },
    });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('endpoint_disabled');
    await call('PATCH', `/v1/endpoints/${id}`, { body: { enabled: true } });
    expect(
      (await call('POST', `/v1/endpoints/${id}/recover`, { body: { since: '2025-03-01T00:00:00Z' } })).status,
    ).toBe(202);
  });

  it('lists dead letters, filtered by endpoint, with a bounded limit', async () => {
    const answer = await call('GET', '/v1/dead-letters?endpointId=ep_x&limit=10');
    expect(answer.status).toBe(200);
    expect(answer.body.data).toHaveLength(1);
    expect(answer.body.data[0]).toMatchObject({ messageId: 'msg_known', reason: 'exhausted' });
    await call('GET', '/v1/dead-letters');
    expect(fake.calls).toEqual([
      ['deadLetters', { endpointId: 'ep_x', limit: 10 }],
      ['deadLetters', { endpointId: undefined, limit: 100 }],
    ]);
    expect((await call('GET', '/v1/dead-letters?limit=-1')).status).toBe(400);
  });
});

describe('admin API: before the endpoints are loaded', () => {
  it('answers 503 endpoints_loading', async () => {
    await endpoints.stop();
    const answer = await call('GET', '/v1/endpoints');
    expect(answer.status).toBe(503);
    expect(answer.body.error.code).toBe('endpoints_loading');
  });
});

describe('admin API: unknown routes', () => {
  it('answers the JSON 404 of the app', async () => {
    const answer = await call('GET', '/v1/nothing-here');
    expect(answer.status).toBe(404);
    expect(answer.body.error).toBeDefined();
  });
});
