import Redis from 'ioredis';
import pino from 'pino';
import { testEndpoints, uniqueName } from '@ampflow/testing';
import { createDoneMarks } from '../src/delivery/done-marks';
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
    marks.mark(done);
    await new Promise((resolve) => setImmediate(resolve));
    await marks.flush();
    expect(await marks.done([done, other])).toEqual([true, false]);
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
    expect(await failing.done([done])).toEqual([false]);
    offline.disconnect();
  });
});
