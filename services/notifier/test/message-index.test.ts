import { randomUUID } from 'node:crypto';
import { testEndpoints } from '@ampflow/testing';
import Redis from 'ioredis';
import type { AttemptView } from '../src/admin/delivery-control';
import { createAttemptLog } from '../src/delivery/attempt-log';
import { createMessageIndex, type IndexedMessage } from '../src/history/message-index';
import { minuteOf } from '../src/history/message-log-model';

/** The message log's Redis index (src/history/message-index.ts) on the real Redis, each test in its namespace. */
const NOW = Date.now();

const aMessage = (id: string, endpointIds: string[], vehicle = 'veh_1'): IndexedMessage => ({
  id,
  type: 'vehicle.telemetry',
  body: JSON.stringify({ type: 'vehicle.telemetry', timestamp: new Date(NOW).toISOString(), data: {} }),
  routing: { provider: 'smartcar', vehicleIds: [vehicle], userId: null, sourceId: `src:${id}` },
  sourceTimestampMs: NOW,
  endpointIds,
});

const anAttempt = (overrides: Partial<AttemptView> = {}): AttemptView => ({
  messageId: 'msg_1',
  endpointId: 'ep_1',
  eventType: 'vehicle.telemetry',
  attempt: 1,
  status: 'failed',
  httpStatus: 500,
  durationMs: 5,
  responseExcerpt: null,
  error: 'HTTP 500',
  at: new Date(NOW).toISOString(),
  next: 'retry',
  nextAttemptAt: new Date(NOW + 5_000).toISOString(),
  ...overrides,
});

describe('message index (Redis)', () => {
  let redis: Redis;
  let pipelines = 0;
  const namespaces: string[] = [];
  const stops: Array<() => Promise<void>> = [];

  beforeAll(() => {
    redis = new Redis(testEndpoints().redisUrl, { lazyConnect: true });
    // Counts the pipelines sent, to check the index adds no round trip per message.
    const pipeline = redis.pipeline.bind(redis);
    redis.pipeline = ((...args: Parameters<typeof pipeline>) => {
      const p = pipeline(...args);
      const exec = p.exec.bind(p);
      p.exec = ((...a: Parameters<typeof exec>) => {
        pipelines += 1;
        return exec(...a);
      }) as typeof p.exec;
      return p;
    }) as typeof redis.pipeline;
  });

  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
    for (const namespace of namespaces.splice(0)) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1000);
        if (keys.length > 0) await redis.del(...keys);
        cursor = next;
      } while (cursor !== '0');
    }
  });

  afterAll(async () => {
    await redis.quit();
  });

  function newIndex(now: () => number = () => NOW) {
    const namespace = `test:message-index:${randomUUID()}`;
    namespaces.push(namespace);
    const log = createAttemptLog(redis, { namespace, retentionMs: 3_600_000, flushIntervalMs: 10_000 });
    stops.push(() => log.stop());
    return { index: createMessageIndex(redis, log, { namespace, retentionMs: 3_600_000, now }), namespace };
  }

  it('writes a batch of messages and attempts in the attempt log pipeline, not one round trip per message', async () => {
    const { index } = newIndex();
    const ids = Array.from({ length: 300 }, (_, i) => `msg_${i}`);
    index.saveMessages(ids.map((id) => aMessage(id, ['ep_1', 'ep_2'])));
    for (const id of ids) index.record(anAttempt({ messageId: id }));
    const before = pipelines;
    await index.flush();
    // 300 messages + 300 attempts: 600 buffered writes and the index's one entry: two batches of 500.
    expect(pipelines - before).toBeLessThanOrEqual(2);
    const page = await index.list({ limit: 500 });
    expect(page.data).toHaveLength(300);
    expect(page.data[0]!.endpoints).toEqual([
      {
        endpointId: 'ep_1',
        status: 'failed',
        attempts: 1,
        lastStatusCode: 500,
        nextAttemptAt: new Date(NOW + 5_000).toISOString(),
      },
      { endpointId: 'ep_2', status: 'pending', attempts: 0 },
    ]);
    // Bodies stay in the attempt log, without the index's endpoint ids.
    const stored = await index.getMessage('msg_7');
    expect(stored).toMatchObject({ id: 'msg_7', type: 'vehicle.telemetry' });
    expect(stored).not.toHaveProperty('endpointIds');
  });

  it('pages newest first through messages made in the same millisecond, each once', async () => {
    let clock = NOW;
    const { index } = newIndex(() => clock);
    index.saveMessages(['msg_a', 'msg_b', 'msg_c', 'msg_d', 'msg_e'].map((id) => aMessage(id, ['ep_1'])));
    clock += 1_000;
    index.saveMessages([aMessage('msg_later', ['ep_1'])]);
    const seen: string[] = [];
    let cursor;
    for (let page = 0; page < 10; page += 1) {
      const result = await index.list({ limit: 2, ...(cursor && { cursor }) });
      seen.push(...result.data.map((m) => m.id));
      if (!result.nextCursor) break;
      cursor = result.nextCursor;
    }
    expect(seen).toEqual(['msg_later', 'msg_e', 'msg_d', 'msg_c', 'msg_b', 'msg_a']);
    expect((await index.list({ limit: 10, untilMs: NOW + 1_000 })).data.map((m) => m.id)).toHaveLength(5);
    expect((await index.list({ limit: 10, sinceMs: NOW + 1 })).data.map((m) => m.id)).toEqual(['msg_later']);
  });

  it('follows each delivery: pending, failed, dead letter, re-sent (pending), delivered; counts attempts', async () => {
    const { index } = newIndex();
    index.saveMessages([aMessage('msg_1', ['ep_1'])]);
    const status = async () => (await index.summary('msg_1'))!.summary.endpoints[0]!;
    expect(await status()).toEqual({ endpointId: 'ep_1', status: 'pending', attempts: 0 });
    index.record(anAttempt());
    expect(await status()).toMatchObject({ status: 'failed', attempts: 1 });
    index.record(anAttempt({ attempt: 2, next: 'dead_letter', nextAttemptAt: null }));
    index.recordDeadLetter({
      messageId: 'msg_1',
      endpointId: 'ep_1',
      eventType: 'vehicle.telemetry',
      reason: 'exhausted',
      lastStatus: 500,
      lastError: 'HTTP 500',
      failedAt: new Date(NOW).toISOString(),
      attempts: 2,
    });
    expect(await status()).toEqual({ endpointId: 'ep_1', status: 'dead', attempts: 2, lastStatusCode: 500 });
    index.markRequeued('msg_1', 'ep_1');
    expect((await status()).status).toBe('pending');
    // Fan-out saving the same message again (a replay) does not reset where it stands.
    index.record(anAttempt({ status: 'succeeded', httpStatus: 200, next: 'done', nextAttemptAt: null }));
    index.saveMessages([aMessage('msg_1', ['ep_1'])]);
    expect(await status()).toEqual({
      endpointId: 'ep_1',
      status: 'delivered',
      attempts: 3,
      lastStatusCode: 200,
    });
    expect((await index.list({ limit: 10 })).data.map((m) => m.id)).toEqual(['msg_1']);
  });

  it('indexes a message it never saw (an operational event) at its first attempt, by endpoint too', async () => {
    const { index } = newIndex();
    index.record(anAttempt({ messageId: 'msg_op', endpointId: 'ep_ops', eventType: 'endpoint.disabled' }));
    const page = await index.list({ limit: 10, endpointId: 'ep_ops' });
    expect(page.data).toEqual([
      {
        id: 'msg_op',
        type: 'endpoint.disabled',
        createdAt: new Date(NOW).toISOString(),
        endpoints: [expect.objectContaining({ endpointId: 'ep_ops', status: 'failed' })],
      },
    ]);
    expect((await index.list({ limit: 10, endpointId: 'ep_other' })).data).toEqual([]);
  });

  it('filters by vehicle, type and status, and a bounded scan returns a cursor to go on with', async () => {
    const { index } = newIndex();
    index.saveMessages(Array.from({ length: 30 }, (_, i) => aMessage(`msg_${i}`, ['ep_1'], `veh_${i % 3}`)));
    const byVehicle = await index.list({ limit: 100, vehicle: 'veh_1' });
    expect(byVehicle.data).toHaveLength(10);
    expect(byVehicle.data.every((m) => m.vehicleId === 'veh_1')).toBe(true);
    expect((await index.list({ limit: 100, eventType: 'vehicle.error' })).data).toEqual([]);
    expect((await index.list({ limit: 100, status: 'pending' })).data).toHaveLength(30);
    // Examines at most 5 entries per call: short pages, but the cursor reaches every match.
    const found: string[] = [];
    let cursor;
    for (let call = 0; call < 20; call += 1) {
      const page = await index.list({
        limit: 100,
        vehicle: 'veh_2',
        scanLimit: 5,
        ...(cursor && { cursor }),
      });
      expect(page.data.length).toBeLessThanOrEqual(5);
      found.push(...page.data.map((m) => m.id));
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    const all = await index.list({ limit: 100, vehicle: 'veh_2' });
    expect(all.data).toHaveLength(10);
    expect(found.sort()).toEqual(all.data.map((m) => m.id).sort());
  });

  it('counts attempts and failures per endpoint over the last 60 minutes', async () => {
    const { index, namespace } = newIndex();
    index.record(anAttempt({ messageId: 'msg_1' }));
    index.record(anAttempt({ messageId: 'msg_2', status: 'succeeded', next: 'done', httpStatus: 200 }));
    index.record(anAttempt({ messageId: 'msg_3', at: new Date(NOW - 30 * 60_000).toISOString() }));
    // Outside the hour: counted in its own minute, not in the last hour.
    index.record(anAttempt({ messageId: 'msg_4', at: new Date(NOW - 61 * 60_000).toISOString() }));
    index.record(anAttempt({ messageId: 'msg_5', endpointId: 'ep_2', status: 'succeeded', next: 'done' }));
    const counts = await index.lastHour(['ep_1', 'ep_2', 'ep_3'], NOW);
    expect(Object.fromEntries(counts)).toEqual({
      ep_1: { attempts: 3, failures: 2 },
      ep_2: { attempts: 1, failures: 0 },
      ep_3: { attempts: 0, failures: 0 },
    });
    const ttl = await redis.pttl(`${namespace}:attempt-counts:ep_1:${minuteOf(NOW)}`);
    expect(ttl).toBeGreaterThan(3_600_000);
    expect(ttl).toBeLessThanOrEqual(2 * 3_600_000);
  });
});
