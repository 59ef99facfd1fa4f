import Redis from 'ioredis';
import pino from 'pino';
import type { KafkaMessage } from 'kafkajs';
import { createMetricsRegistry } from '@ampflow/observability';
import { testEndpoints, uniqueName } from '@ampflow/testing';
import { sourceTopics } from '../src/app';
import type { WorkItem } from '../src/delivery/work-item';
import type { Endpoint } from '../src/endpoints/model';
import { createFanoutHandler } from '../src/fanout/fanout';
import { createDoneMarks } from '../src/delivery/done-marks';
import { createNotifierMetrics } from '../src/metrics';
import { telemetry } from './fixtures';

/**
 * The fan-out against a real Redis, with the Avro step replaced by JSON (what is tested is what happens to the
 * vehicle's plug state when records are read again, not decoding).
 */
describe('fan-out of records read again', () => {
  const redis = new Redis(testEndpoints().redisUrl);
  const namespace = uniqueName('fanout');
  afterAll(async () => {
    const keys = await redis.keys(`${namespace}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  const topics = sourceTopics('t.');
  const endpoint = {
    id: 'ep_1',
    eventTypes: [],
    vehicleIds: [],
    userIds: [],
    providers: [],
    enabled: true,
  } as unknown as Endpoint;
  const submitted: WorkItem[] = [];
  const handler = createFanoutHandler({
    codec: { decode: async (value) => JSON.parse(value!.toString('utf8')) },
    redis,
    namespace,
    stateTtlSeconds: 600,
    topics,
    endpoints: { list: () => [endpoint] },
    submit: async (item) => {
      submitted.push(item);
      return true;
    },
    deadLetterSource: async () => true,
    saveMessages: () => undefined,
    metrics: createNotifierMetrics(createMetricsRegistry('fanout-test', { defaultMetrics: false })),
    logger: pino({ level: 'silent' }),
  });
  let offset = 0;
  const record = (value: unknown) => ({
    topic: topics.telemetry,
    partition: 0,
    message: {
      value: Buffer.from(JSON.stringify(value)),
      timestamp: String(Date.now()),
      offset: String(offset++),
      key: null,
      attributes: 0,
      headers: {},
    } as unknown as KafkaMessage,
  });
  const run = async (values: unknown[]) => {
    submitted.length = 0;
    const completions = await handler(values.map(record), new AbortController().signal);
    await Promise.all(completions);
    return submitted.filter((i) => i.type.startsWith('vehicle.plug') || i.type === 'vehicle.unplugged');
  };

  it('fires a plug event again, with the same id, when its reading is read again after later readings', async () => {
    const vehicle = `smartcar:${uniqueName('v')}`;
    const t0 = telemetry(vehicle, 0, { isPluggedIn: false });
    const t1 = telemetry(vehicle, 1, { isPluggedIn: true });
    const t2 = telemetry(vehicle, 2, { isPluggedIn: true, stateOfChargePercent: 40 });
    const first = await run([t0, t1, t2]);
    expect(first.map((i) => i.type)).toEqual(['vehicle.plugged_in']);
    // T1's delivery was let go (a rebalance, a stop) and its record is read again after T2 moved the state on.
    const again = await run([t1]);
    expect(again.map((i) => [i.type, i.messageId])).toEqual([['vehicle.plugged_in', first[0]!.messageId]]);
    // A later reading that is not a change still fires nothing, and a real change still fires.
    expect(await run([t2])).toEqual([]);
    const t3 = telemetry(vehicle, 3, { isPluggedIn: false });
    expect((await run([t3])).map((i) => i.type)).toEqual(['vehicle.unplugged']);
  });

  it('reads a batch in one MGET, the done marks of its deliveries included, and skips what is marked', async () => {
    const marks = createDoneMarks(redis, { namespace, ttlSeconds: 600, logger: pino({ level: 'silent' }) });
    const second = { ...endpoint, id: 'ep_2' } as Endpoint;
    let lists = 0;
    /** From the nth `list()` on, a second endpoint exists (added between a batch's read and its fan-out). */
    let secondFrom = Infinity;
    const delivered: WorkItem[] = [];
    const marked = createFanoutHandler({
      codec: { decode: async (value) => JSON.parse(value!.toString('utf8')) },
      redis,
      namespace,
      stateTtlSeconds: 600,
      topics,
      endpoints: { list: () => (++lists >= secondFrom ? [endpoint, second] : [endpoint]) },
      submit: async (item) => {
        delivered.push(item);
        return true;
      },
      deadLetterSource: async () => true,
      saveMessages: () => undefined,
      marks,
      metrics: createNotifierMetrics(createMetricsRegistry('fanout-marks-test', { defaultMetrics: false })),
      logger: pino({ level: 'silent' }),
    });
    const go = async (values: unknown[]) => {
      delivered.length = 0;
      await Promise.all(await marked(values.map(record), new AbortController().signal));
      await marks.flush();
      return delivered.map((i) => `${i.type}>${i.endpointId}`).sort();
    };
    const vehicle = `smartcar:${uniqueName('v')}`;
    const t0 = telemetry(vehicle, 0, { isPluggedIn: false });
    const t1 = telemetry(vehicle, 1, { isPluggedIn: true });
    await go([t0]);
    const mget = jest.spyOn(redis, 'mget');
    try {
      expect(await go([t1])).toEqual(['vehicle.plugged_in>ep_1', 'vehicle.telemetry>ep_1']);
      expect(mget).toHaveBeenCalledTimes(1);
      // Read again: both deliveries (the plug event's too) are marked, so none is made; still one read.
      mget.mockClear();
      expect(await go([t1])).toEqual([]);
      expect(mget).toHaveBeenCalledTimes(1);
      // An endpoint that appears after the read is outside the guess: the batch's marks are read again, and
      // only its deliveries are made.
      mget.mockClear();
      secondFrom = lists + 2;
      expect(await go([t1])).toEqual(['vehicle.plugged_in>ep_2', 'vehicle.telemetry>ep_2']);
      expect(mget).toHaveBeenCalledTimes(2);
    } finally {
      mget.mockRestore();
    }
  });
});
