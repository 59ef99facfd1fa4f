import { Topics } from '@ampflow/contracts';
import { eventually, startRedisProcess, uniqueName, type RedisProcess } from '@ampflow/testing';
import { telemetry } from './fixtures';
import {
  deliveredIds,
  registerSink,
  startNotifier,
  startSink,
  type Json,
  type NotifierUnderTest,
  type Sink,
  managedNotifiers,
} from './harness';

/**
 * Issue 10, Tests: Redis flushed in the middle loses no endpoint and no pending message. A redis-server of this
 * test's own (never the shared one) is flushed while every message waits in the retry tiers; endpoints live in
 * the compacted topic and pending deliveries in Kafka, so everything still arrives, and a notifier started
 * after the flush still knows the endpoints.
 */
jest.setTimeout(120_000);

const { sink, cleanups } = managedNotifiers();

const N = 20;
const SCHEDULE = [0, ...Array.from({ length: 30 }, () => 500)];

describe('notifier with a Redis that loses its data', () => {
  it('loses no endpoint and no pending message when Redis is flushed', async () => {
    const redis: RedisProcess = await startRedisProcess();
    cleanups.push(() => redis.stop());
    let stopped = false;
    const n: NotifierUnderTest = await startNotifier({ retryScheduleMs: SCHEDULE }, { redisUrl: redis.url });
    cleanups.push(async () => {
      if (!stopped) await n.stop();
    });
    let up = false;
    const respond: Parameters<typeof startSink>[0] = (_h, _q, res) => {
      res.writeHead(up ? 204 : 503).end();
    };
    const a = await sink(respond);
    const b = await sink(respond);
    const ids = [
      await registerSink(n, a, { eventTypes: ['vehicle.telemetry'] }),
      await registerSink(n, b, { eventTypes: ['vehicle.telemetry'] }),
    ].sort();
    const vehicle = `telematica:${uniqueName('v')}`;
    await n.produce(
      Topics.vehicleTelemetry,
      Array.from({ length: N }, (_, i) => telemetry(vehicle, i)),
    );
    const distinct = (s: Sink) => new Set(s.received.map((h) => h.id)).size;
    await eventually(() => distinct(a) >= N && distinct(b) >= N, 'every message attempted at both');
    expect(deliveredIds(a)).toEqual([]);

    // Everything is now pending in the retry tiers; Redis forgets all it had.
    await redis.flushAll();
    up = true;
    await eventually(
      () => new Set(deliveredIds(a)).size >= N && new Set(deliveredIds(b)).size >= N,
      'every message delivered to both endpoints after the flush',
      60_000,
    );
    const messageIds = new Set(a.received.map((h) => h.id));
    expect(messageIds.size).toBe(N);
    expect(new Set(deliveredIds(a))).toEqual(messageIds);
    expect(new Set(deliveredIds(b))).toEqual(messageIds);
    const listed = await n.admin('GET', '/v1/endpoints');
    expect(listed.body.data.map((e: Json) => e.id).sort()).toEqual(ids);
    expect(n.fatalErrors).toEqual([]);

    // A notifier started after another flush still has the endpoints and delivers to them.
    await n.stop();
    stopped = true;
    await redis.flushAll();
    const again = await startNotifier(
      { retryScheduleMs: SCHEDULE },
      { redisUrl: redis.url, prefix: n.prefix },
    );
    cleanups.push(async () => {
      await again.stop();
      expect(again.fatalErrors).toEqual([]);
    });
    const relisted = await again.admin('GET', '/v1/endpoints');
    expect(relisted.status).toBe(200);
    expect(relisted.body.data.map((e: Json) => e.id).sort()).toEqual(ids);
    await again.produce(Topics.vehicleTelemetry, [telemetry(vehicle, 100)]);
    await eventually(
      () => new Set(deliveredIds(a)).size > N && new Set(deliveredIds(b)).size > N,
      'a new message delivered by the restarted notifier',
    );
    // Nothing pending before the restart was lost either: every first message is still delivered.
    for (const id of messageIds) expect(deliveredIds(a)).toContain(id);
  });
});
