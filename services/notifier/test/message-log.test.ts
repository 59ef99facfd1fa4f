import { Topics } from '@ampflow/contracts';
import { eventually, startRedisProcess, uniqueName } from '@ampflow/testing';
import { telemetry } from './fixtures';
import {
  deliveredIds,
  managedNotifiers,
  registerSink,
  startNotifier,
  type Json,
  type NotifierUnderTest,
} from './harness';

/**
 * Issue 18: what the console reads from the admin API: owners, endpoint health, the message log with its
 * filters and pages, a message with its attempts, test messages through the real delivery path, bulk retry.
 * Real Kafka, registry and Redis; a notifier app as the other admin tests start it.
 */
jest.setTimeout(90_000);

const { notifier, sink, cleanups } = managedNotifiers();

async function ok(n: NotifierUnderTest, method: string, path: string, body?: unknown): Promise<Json> {
  const answer = await n.admin(method, path, body);
  if (answer.status >= 300)
    throw new Error(`${method} ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}

/** `read`'s first defined answer (polled like `eventually`). */
async function waitFor<T>(read: () => Promise<T | undefined>, description: string): Promise<T> {
  let value: T | undefined;
  await eventually(async () => (value = await read()) !== undefined, description);
  return value!;
}

/** Every message of a listing, following nextCursor. */
async function allPages(n: NotifierUnderTest, query: string): Promise<Json[]> {
  const out: Json[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 50; page += 1) {
    const sep = query ? '&' : '';
    const body = await ok(
      n,
      'GET',
      `/v1/messages?${query}${sep}limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    out.push(...body.data);
    if (!body.nextCursor) return out;
    cursor = body.nextCursor;
  }
  throw new Error('too many pages');
}

describe('notifier admin API: owners, health and the message log', () => {
  it('filters endpoints by owner and shows each with its health', async () => {
    const n = await notifier({ circuitFailures: 2, circuitCooldownMs: 60_000 });
    const good = await sink();
    const bad = await sink((_h, _q, res) => {
      res.writeHead(500).end('down');
    });
    const goodId = await registerSink(n, good, { eventTypes: ['vehicle.telemetry'], owner: 'cust_a' });
    const badId = await registerSink(n, bad, { eventTypes: ['vehicle.telemetry'], owner: 'cust_b' });
    const vehicle = `telematica:${uniqueName('v')}`;
    await n.produce(Topics.vehicleTelemetry, [telemetry(vehicle, 1), telemetry(vehicle, 2)]);
    await eventually(() => deliveredIds(good).length >= 2, 'both delivered to the good endpoint');
    await eventually(() => bad.received.length >= 2, 'two failed attempts at the bad endpoint');

    const owned = await ok(n, 'GET', '/v1/endpoints?owner=cust_a');
    expect(owned.data.map((e: Json) => e.id)).toEqual([goodId]);
    expect(owned.data[0]).toMatchObject({ owner: 'cust_a', health: { circuit: 'closed', failureRate1h: 0 } });
    expect(owned.data[0].health.attempts1h).toBeGreaterThanOrEqual(2);
    expect((await ok(n, 'GET', '/v1/endpoints?owner=nobody')).data).toEqual([]);

    // The circuit (endpoint-health topic, set at once) and the attempt counts (Redis, written with the history
    // within a round trip or the history's 50 ms flush) are written apart: wait for both.
    await eventually(async () => {
      const { health } = await ok(n, 'GET', `/v1/endpoints/${badId}`);
      return health.circuit === 'open' && health.attempts1h >= 2;
    }, 'open, with its failed attempts counted');
    const failing = await ok(n, 'GET', `/v1/endpoints/${badId}`);
    expect(failing.health).toMatchObject({
      circuit: 'open',
      failureRate1h: 1,
      failingSince: expect.any(String),
    });
    expect(failing.health.attempts1h).toBeGreaterThanOrEqual(2);
    expect(failing.health.disabledReason).toBeUndefined();

    await ok(n, 'PATCH', `/v1/endpoints/${badId}`, { enabled: false, owner: null });
    const disabled = await ok(n, 'GET', `/v1/endpoints/${badId}`);
    expect(disabled).toMatchObject({ owner: null, health: { disabledReason: 'manual' } });
    expect((await ok(n, 'GET', '/v1/endpoints?owner=cust_b')).data).toEqual([]);

    const refused = await n.admin('GET', '/v1/endpoints?owner=not%20valid');
    expect(refused.status).toBe(400);
    expect(refused.body.error.message).toMatch(/^owner: /);
  });

  it('lists messages newest first with each endpoint, filters them, pages them, and shows one with its attempts', async () => {
    const n = await notifier({ retryScheduleMs: [0, 60_000] });
    const good = await sink();
    const bad = await sink((_h, _q, res) => {
      res.writeHead(503).end('x'.repeat(3_000));
    });
    const goodId = await registerSink(n, good, { eventTypes: ['vehicle.telemetry'] });
    const badId = await registerSink(n, bad, { eventTypes: ['vehicle.telemetry'], vehicleIds: [] });
    const v1 = `telematica:${uniqueName('v')}`;
    const v2 = `telematica:${uniqueName('v')}`;
    await n.produce(Topics.vehicleTelemetry, [telemetry(v1, 1), telemetry(v1, 2)]);
    await eventually(() => deliveredIds(good).length >= 2, 'first two delivered');
    await n.produce(Topics.vehicleTelemetry, [telemetry(v2, 3)]);
    await eventually(() => deliveredIds(good).length >= 3 && bad.received.length >= 3, 'all three attempted');

    const all = await waitFor(async () => {
      const body = await ok(n, 'GET', '/v1/messages');
      const done =
        body.data.length === 3 &&
        body.data.every(
          (m: Json) => m.endpoints.length === 2 && m.endpoints.every((e: Json) => e.status !== 'pending'),
        );
      return done ? body : undefined;
    }, 'three messages, each attempted at both endpoints');
    expect(all.nextCursor).toBeUndefined();
    // The newest (v2's, made in a later batch) first.
    expect(all.data[0]).toMatchObject({ type: 'vehicle.telemetry', vehicleId: v2 });
    for (const message of all.data) {
      expect(message.id).toMatch(/^msg_/);
      expect(Date.parse(message.createdAt)).not.toBeNaN();
      const byEndpoint = Object.fromEntries(message.endpoints.map((e: Json) => [e.endpointId, e]));
      expect(byEndpoint[goodId]).toEqual({
        endpointId: goodId,
        status: 'delivered',
        attempts: 1,
        lastStatusCode: 204,
      });
      expect(byEndpoint[badId]).toEqual({
        endpointId: badId,
        status: 'failed',
        attempts: 1,
        lastStatusCode: 503,
        nextAttemptAt: expect.any(String),
      });
    }
    const createdAt = all.data.map((m: Json) => Date.parse(m.createdAt));
    expect([...createdAt].sort((a, b) => b - a)).toEqual(createdAt);

    const ids = (list: Json[]) => list.map((m: Json) => m.id).sort();
    expect(ids((await ok(n, 'GET', `/v1/messages?vehicle=${encodeURIComponent(v2)}`)).data)).toEqual([
      all.data[0].id,
    ]);
    const failedAtBad = await ok(n, 'GET', `/v1/messages?endpointId=${badId}&status=failed`);
    expect(ids(failedAtBad.data)).toEqual(ids(all.data));
    // With an endpoint, only that endpoint of each message is shown.
    expect(
      failedAtBad.data.every((m: Json) => m.endpoints.length === 1 && m.endpoints[0].endpointId === badId),
    ).toBe(true);
    expect((await ok(n, 'GET', `/v1/messages?endpointId=${goodId}&status=failed`)).data).toEqual([]);
    expect((await ok(n, 'GET', '/v1/messages?status=dead')).data).toEqual([]);
    expect((await ok(n, 'GET', '/v1/messages?eventType=vehicle.error')).data).toEqual([]);
    const future = new Date(Date.now() + 3_600_000).toISOString();
    expect((await ok(n, 'GET', `/v1/messages?since=${future}`)).data).toEqual([]);
    expect(ids((await ok(n, 'GET', `/v1/messages?until=${future}`)).data)).toEqual(ids(all.data));
    expect(ids((await ok(n, 'GET', `/v1/messages?until=${all.data[0].createdAt}`)).data)).toEqual(
      ids(all.data.slice(1)),
    );

    // Pages of one: each message once, in the same order.
    const paged = await allPages(n, '');
    expect(paged.map((m: Json) => m.id)).toEqual(all.data.map((m: Json) => m.id));

    const one = await ok(n, 'GET', `/v1/messages/${all.data[0].id}`);
    expect(one).toMatchObject({
      id: all.data[0].id,
      type: 'vehicle.telemetry',
      vehicleId: v2,
      createdAt: all.data[0].createdAt,
      body: { type: 'vehicle.telemetry', data: { vehicleId: v2 } },
      routing: { vehicleIds: [v2] },
    });
    expect(one.endpoints).toEqual(all.data[0].endpoints);
    const failedAttempt = one.attempts.find((a: Json) => a.endpointId === badId);
    expect(failedAttempt).toMatchObject({ status: 'failed', httpStatus: 503, next: 'retry' });
    expect(failedAttempt.responseExcerpt.length).toBeLessThanOrEqual(1_024);
    expect(Date.parse(failedAttempt.nextAttemptAt)).toBeGreaterThan(Date.parse(failedAttempt.at));
    expect(typeof failedAttempt.durationMs).toBe('number');

    const missing = await n.admin('GET', '/v1/messages/msg_unknown');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('message_not_found');
    for (const query of [
      'limit=0',
      'limit=501',
      'status=lost',
      'since=yesterday',
      'cursor=nonsense',
      'colour=red',
      `since=${future}&until=${future}`,
    ]) {
      const answer = await n.admin('GET', `/v1/messages?${query}`);
      expect([query, answer.status, answer.body.error.code]).toEqual([query, 400, 'invalid_request']);
    }
  });

  it('sends a signed endpoint.test message through the delivery path, retried like any other', async () => {
    const n = await notifier({ retryScheduleMs: [0, 100, 200] });
    let calls = 0;
    const s = await sink((_h, _q, res) => {
      calls += 1;
      res.writeHead(calls === 1 ? 500 : 200).end();
    });
    const endpointId = await registerSink(n, s, { eventTypes: ['charging_session.ended'] });
    const other = await sink();
    await registerSink(n, other, { eventTypes: [] });

    const sent = await n.admin('POST', `/v1/endpoints/${endpointId}/test`);
    expect(sent.status).toBe(202);
    const { messageId } = sent.body;
    expect(messageId).toMatch(/^msg_/);
    await eventually(() => deliveredIds(s).includes(messageId), 'the test message delivered after a retry');
    expect(s.unverified).toBe(0);
    expect(s.received.map((h) => [h.id, h.type, h.status])).toEqual([
      [messageId, 'endpoint.test', 500],
      [messageId, 'endpoint.test', 200],
    ]);
    expect(s.received[0]!.body.data.endpointId).toBe(endpointId);
    // That endpoint only.
    expect(other.received).toEqual([]);

    const shown = await waitFor(async () => {
      const body = await ok(n, 'GET', `/v1/messages/${messageId}`);
      return body.attempts.length === 2 ? body : undefined;
    }, 'both attempts in the log');
    expect(shown).toMatchObject({
      type: 'endpoint.test',
      endpoints: [{ endpointId, status: 'delivered', attempts: 2, lastStatusCode: 200 }],
    });
    expect(shown.vehicleId).toBeUndefined();
    const listed = await ok(n, 'GET', `/v1/messages?endpointId=${endpointId}&eventType=endpoint.test`);
    expect(listed.data.map((m: Json) => m.id)).toEqual([messageId]);

    expect((await n.admin('POST', '/v1/endpoints/ep_aaaaaaaaaaaaaaaaaaaaaaaaaa/test')).status).toBe(404);
    expect((await n.admin('POST', `/v1/endpoints/${endpointId}/test`, { extra: 1 })).status).toBe(400);
    await ok(n, 'PATCH', `/v1/endpoints/${endpointId}`, { enabled: false });
    const disabled = await n.admin('POST', `/v1/endpoints/${endpointId}/test`);
    expect(disabled.status).toBe(409);
    expect(disabled.body.error.code).toBe('endpoint_disabled');
  });

  it('re-sends a filtered selection of dead deliveries through the one-message retry', async () => {
    const n = await notifier({ retryScheduleMs: [0, 50] });
    let up = false;
    const s = await sink((_h, _q, res) => {
      res.writeHead(up ? 200 : 500).end();
    });
    const endpointId = await registerSink(n, s, { eventTypes: ['vehicle.telemetry'] });
    const vehicle = `telematica:${uniqueName('v')}`;
    await n.produce(
      Topics.vehicleTelemetry,
      [1, 2, 3].map((i) => telemetry(vehicle, i)),
    );
    await eventually(async () => {
      const body = await ok(n, 'GET', `/v1/messages?endpointId=${endpointId}&status=dead`);
      return body.data.length === 3;
    }, 'three dead letters');
    up = true;

    for (const [body, code, status] of [
      [{ limit: 1001 }, 'invalid_request', 400],
      [{ status: 'delivered' }, 'invalid_request', 400],
      [{ since: '2026-12-02T00:00:00Z', until: '2026-12-01T00:00:00Z' }, 'invalid_request', 400],
      [{ endpointId: 'ep_aaaaaaaaaaaaaaaaaaaaaaaaaa' }, 'endpoint_not_found', 404],
    ] as const) {
      const answer = await n.admin('POST', '/v1/messages/retry', body);
      expect([answer.status, answer.body.error.code]).toEqual([status, code]);
    }
    // Nothing failed (waiting for a retry) at this endpoint: all three are dead.
    expect((await n.admin('POST', '/v1/messages/retry', { endpointId, status: 'failed' })).body).toEqual({
      retried: 0,
    });

    const one = await n.admin('POST', '/v1/messages/retry', { endpointId, status: 'dead', limit: 1 });
    expect(one).toEqual({ status: 202, body: { retried: 1 } });
    await eventually(() => deliveredIds(s).length === 1, 'one re-sent');
    await eventually(
      async () => (await ok(n, 'GET', `/v1/messages?endpointId=${endpointId}&status=dead`)).data.length === 2,
      'two still dead',
    );

    const rest = await n.admin('POST', '/v1/messages/retry', {
      endpointId,
      since: new Date(Date.now() - 600_000).toISOString(),
    });
    expect(rest).toEqual({ status: 202, body: { retried: 2 } });
    await eventually(() => new Set(deliveredIds(s)).size === 3, 'all three delivered');
    await eventually(async () => {
      const body = await ok(n, 'GET', `/v1/messages?endpointId=${endpointId}`);
      return body.data.length === 3 && body.data.every((m: Json) => m.endpoints[0].status === 'delivered');
    }, 'all three delivered in the log');
    expect(deliveredIds(s)).toHaveLength(3);
  });

  it('without Redis: endpoints still listed (counts unknown), the message log answers 503 redis_unavailable', async () => {
    const redis = await startRedisProcess();
    cleanups.push(() => redis.stop());
    const n = await startNotifier({}, { redisUrl: redis.url });
    cleanups.push(() => n.stop());
    const s = await sink();
    const id = await registerSink(n, s, { owner: 'cust_r' });
    expect((await ok(n, 'GET', `/v1/endpoints/${id}`)).health).toEqual({
      circuit: 'closed',
      failureRate1h: 0,
      attempts1h: 0,
    });

    await redis.kill();
    const listed = await ok(n, 'GET', '/v1/endpoints?owner=cust_r');
    expect(listed.data.map((e: Json) => [e.id, e.health])).toEqual([
      [id, { circuit: 'closed', failureRate1h: null, attempts1h: null }],
    ]);
    const messages = await n.admin('GET', '/v1/messages');
    expect([messages.status, messages.body.error.code]).toEqual([503, 'redis_unavailable']);
    const one = await n.admin('GET', '/v1/messages/msg_x');
    expect([one.status, one.body.error.code]).toEqual([503, 'redis_unavailable']);

    // Back, so that the notifier stops cleanly.
    await redis.restart();
  });
});
