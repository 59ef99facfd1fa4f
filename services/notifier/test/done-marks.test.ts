import Redis from 'ioredis';
import pino from 'pino';
import { testEndpoints, uniqueName } from '@ampflow/testing';
import { createDoneMarks, doneGenerationKey } from '../src/delivery/done-marks';
import type { WorkItem } from '../src/delivery/work-item';

const item: WorkItem = {
  messageId: 'msg_a',
  endpointId: 'ep_1',
  type: 'vehicle.telemetry',
  body: '{}',
  routing: { provider: 'smartcar', vehicleIds: [], userId: null, sourceId: 's' },
  attempt: 2,
  dueAt: 1_700_000_000_000,
  sourceTimestampMs: 1_700_000_000_000,
  reason: 'retry',
};

describe('done marks', () => {
  const redis = new Redis(testEndpoints().redisUrl);
  const namespace = uniqueName('marks');
  afterAll(async () => {
    const keys = await redis.keys(`${namespace}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it('names a record precisely: a retry, its repeat, and a manual re-send of the same delivery differ', () => {
    const marks = createDoneMarks(redis, { namespace, ttlSeconds: 60, logger: pino({ level: 'silent' }) });
    const retry = marks.keyOf(item, 'tier');
    expect(marks.keyOf({ ...item }, 'tier')).toBe(retry);
    expect(marks.keyOf({ ...item, reason: 'manual_retry', attempt: 1 }, 'tier')).not.toBe(retry);
    expect(marks.keyOf({ ...item, dueAt: item.dueAt + 1 }, 'tier')).not.toBe(retry);
    // A source record's delivery is named without its due time, which differs on every read.
    expect(marks.keyOf({ ...item, dueAt: 1 }, 'source')).toBe(marks.keyOf({ ...item, dueAt: 2 }, 'source'));
  });

  it('reads back what was marked, with a TTL, and answers "not done" when Redis fails', async () => {
    const marks = createDoneMarks(redis, { namespace, ttlSeconds: 60, logger: pino({ level: 'silent' }) });
    const done = marks.keyOf(item, 'tier');
    const other = marks.keyOf({ ...item, attempt: 3 }, 'tier');
    marks.mark(done, 0);
    await new Promise((resolve) => setImmediate(resolve));
    await marks.flush();
    expect(await marks.done([done, other], 'tier')).toEqual({ done: [true, false], generation: 0 });
    const ttl = await redis.ttl(done);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60);

    const offline = new Redis({
      port: 1,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
    });
    const failing = createDoneMarks(offline, {
      namespace,
      ttlSeconds: 60,
      logger: pino({ level: 'silent' }),
    });
    expect((await failing.done([done], 'tier')).done).toEqual([false]);
    offline.disconnect();
  });

  it('counts a source mark only in its generation: a bump makes marked deliveries due again, tier marks stay', async () => {
    const ns = uniqueName('marks');
    const marks = createDoneMarks(redis, {
      namespace: ns,
      ttlSeconds: 60,
      logger: pino({ level: 'silent' }),
    });
    const source = marks.keyOf(item, 'source');
    const tier = marks.keyOf(item, 'tier');
    const before = await marks.done([source], 'source');
    expect(before).toEqual({ done: [false], generation: 0 });
    marks.mark(source, before.generation);
    marks.mark(tier, before.generation);
    await marks.flush();
    expect((await marks.done([source], 'source')).done).toEqual([true]);

    // `reprocess --redeliver` bumps the generation (INCR of the same key).
    await redis.incr(doneGenerationKey(ns));
    const after = await marks.done([source], 'source');
    expect(after).toEqual({ done: [false], generation: 1 });
    expect((await marks.done([tier], 'tier')).done).toEqual([true]);
    // Delivered again and marked in the new generation: done again, until the next bump.
    marks.mark(source, after.generation);
    await marks.flush();
    expect((await marks.done([source], 'source')).done).toEqual([true]);
    // A mark from before generations existed (value 1) counts as generation 0.
    await redis.set(source, '1');
    expect((await marks.done([source], 'source')).done).toEqual([false]);
    await redis.del(source, tier, doneGenerationKey(ns));
  });

  it('writes marks made while a write is in flight with the next one, in chunks, all readable after flush', async () => {
    const ns = uniqueName('marks');
    const marks = createDoneMarks(redis, {
      namespace: ns,
      ttlSeconds: 60,
      logger: pino({ level: 'silent' }),
    });
    const keys = Array.from({ length: 1_250 }, (_, i) =>
      marks.keyOf({ ...item, messageId: `msg_${i}` }, 'source'),
    );
    // Three turns of the event loop: the first write is in flight while the next marks come.
    marks.mark(keys[0]!, 0);
    await new Promise((resolve) => setImmediate(resolve));
    for (const key of keys.slice(1, 600)) marks.mark(key, 0);
    await new Promise((resolve) => setImmediate(resolve));
    for (const key of keys.slice(600)) marks.mark(key, 2);
    await marks.flush();
    const stored = await redis.mget(keys);
    expect(stored.filter((v) => v === 'g0')).toHaveLength(600);
    expect(stored.slice(600).every((v) => v === 'g2')).toBe(true);
    expect(await redis.ttl(keys[1_249]!)).toBeGreaterThan(0);
    await redis.del(...keys);
  });
});
