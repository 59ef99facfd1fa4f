import Redis from 'ioredis';
import pino from 'pino';
import { Topics } from '@ampflow/contracts';
import { createMetricsRegistry } from '@ampflow/observability';
import { createReliableProducer, ensureTopics } from '@ampflow/kafka';
import { collectRecords, eventually, testEndpoints, testKafka, uniqueName } from '@ampflow/testing';
import { createDeadLetterLookup } from '../src/delivery/dlq-lookup';
import { createDurableWriter, type DeadLetterInfo } from '../src/delivery/durable-writer';
import { createNotifierMetrics } from '../src/metrics';
import type { WorkItem } from '../src/delivery/work-item';
import { telemetry } from './fixtures';
import { deliveredIds, managedNotifiers, registerSink, startNotifier } from './harness';

/**
 * Issue 15, item 6: `POST /v1/messages/:id/retry` finds a dead letter that Redis no longer knows through the
 * DLQ index (positions read from the DLQ by every instance), not by reading the DLQ from offset 0.
 */
jest.setTimeout(60_000);

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const { notifier, sink, cleanups } = managedNotifiers();

const anItem = (messageId: string, endpointId: string): WorkItem => ({
  messageId,
  endpointId,
  type: 'vehicle.telemetry',
  body: JSON.stringify({ id: messageId, type: 'vehicle.telemetry' }),
  routing: { provider: 'telematica', vehicleIds: ['telematica:v1'], userId: null, sourceId: 'evt-1' },
  attempt: 4,
  dueAt: 0,
  sourceTimestampMs: 1_000,
  reason: 'retry',
});
const exhausted = (reason: DeadLetterInfo['reason'] = 'exhausted'): DeadLetterInfo => ({
  reason,
  attempts: 3,
  lastStatus: 500,
  lastError: null,
  failedAt: Date.now(),
});

describe('DLQ index', () => {
  it('finds a message by id among many, the latest per endpoint, and one written just before', async () => {
    const kafka = testKafka();
    const topic = `${uniqueName('dlqidx')}.${Topics.webhookDeliveriesDlq}`;
    await ensureTopics(kafka, [{ topic, numPartitions: 2, replicationFactor: 1 }]);
    const producer = createReliableProducer(kafka, { logger });
    await producer.connect();
    cleanups.push(() => producer.disconnect());
    const writer = createDurableWriter({
      producer,
      topicPrefix: 'unused.',
      dlqTopic: topic,
      deliveriesTopic: 'unused.deliveries',
      metrics: createNotifierMetrics(createMetricsRegistry('notifier-test', { defaultMetrics: false })),
      logger,
    });

    // Filler on both partitions, a record that is no delivery (an unreadable source record), the target twice
    // for one endpoint (re-sent, failed again) and once for another.
    await producer.send(
      topic,
      Array.from({ length: 300 }, (_, i) => ({
        key: `msg_fill_${i}:ep_fill`,
        value: Buffer.from('{}'),
        headers: {
          'message-id': `msg_fill_${i}`,
          'endpoint-id': 'ep_fill',
          'event-type': 'vehicle.telemetry',
          routing: '{}',
        },
      })),
    );
    await producer.send(topic, [
      { key: null, value: Buffer.from('not avro'), headers: { 'error-code': 'undecodable' } },
    ]);
    expect(await writer.deadLetter(anItem('msg_target', 'ep_a'), exhausted('exhausted'))).toBe(true);
    expect(await writer.deadLetter(anItem('msg_target', 'ep_b'), exhausted('exhausted'))).toBe(true);
    expect(await writer.deadLetter(anItem('msg_target', 'ep_a'), exhausted('endpoint_disabled'))).toBe(true);

    const lookup = createDeadLetterLookup({
      kafka,
      topic,
      logger,
      onFatal: (error) => {
        throw error;
      },
    });
    await lookup.start();
    cleanups.push(() => lookup.stop());

    const found = await lookup.find('msg_target');
    expect(found.map((r) => [r.messageId, r.endpointId, r.reason]).sort()).toEqual([
      ['msg_target', 'ep_a', 'endpoint_disabled'],
      ['msg_target', 'ep_b', 'exhausted'],
    ]);
    expect(found[0]).toMatchObject({
      type: 'vehicle.telemetry',
      body: JSON.stringify({ id: 'msg_target', type: 'vehicle.telemetry' }),
      routing: { vehicleIds: ['telematica:v1'] },
      sourceTimestampMs: 1_000,
    });
    expect((await lookup.find('msg_target', 'ep_b')).map((r) => r.endpointId)).toEqual(['ep_b']);
    expect(await lookup.find('msg_unknown')).toEqual([]);
    expect((await lookup.find('msg_fill_7')).map((r) => r.endpointId)).toEqual(['ep_fill']);
    expect(lookup.caughtUp()).toBe(true);
    expect(lookup.size).toBe(302);

    // Written after the index caught up: the next find waits for the tail to reach it.
    expect(await writer.deadLetter(anItem('msg_late', 'ep_a'), exhausted())).toBe(true);
    expect((await lookup.find('msg_late')).map((r) => r.endpointId)).toEqual(['ep_a']);

    // An index bounded below the DLQ's size keeps the newest; an older message is found by reading the DLQ.
    const bounded = createDeadLetterLookup({
      kafka,
      topic,
      logger,
      maxPositions: 100,
      onFatal: (error) => {
        throw error;
      },
    });
    await bounded.start();
    cleanups.push(() => bounded.stop());
    expect((await bounded.find('msg_late')).map((r) => r.endpointId)).toEqual(['ep_a']);
    expect(bounded.size).toBe(100);
    expect((await bounded.find('msg_fill_7')).map((r) => [r.messageId, r.endpointId])).toEqual([
      ['msg_fill_7', 'ep_fill'],
    ]);
  });

  it('retries a dead letter whose message Redis no longer holds, on the instance that wrote it and on a new one', async () => {
    const n = await notifier({ retryScheduleMs: [0] });
    let up = false;
    const s = await sink((_h, _q, res) => {
      res.writeHead(up ? 204 : 500).end();
    });
    const endpointId = await registerSink(n, s, { eventTypes: ['vehicle.telemetry'] });
    const dlq = await collectRecords(testKafka(), [`${n.prefix}${Topics.webhookDeliveriesDlq}`]);
    cleanups.push(() => dlq.stop());

    await n.produce(Topics.vehicleTelemetry, [telemetry(`telematica:${uniqueName('v')}`, 1)]);
    const [record] = await dlq.waitFor(1, 30_000);
    const id = s.received[0]!.id;
    expect(record!.headers).toMatchObject({ 'message-id': id, 'endpoint-id': endpointId });

    // Only this message's entry goes from this notifier's namespace: the shared Redis is never flushed.
    const redis = new Redis(testEndpoints().redisUrl);
    cleanups.push(async () => {
      await redis.quit();
    });
    const messageKey = `${n.settings.redisNamespace}:message:${encodeURIComponent(id)}`;
    await eventually(async () => (await redis.exists(messageKey)) === 1, 'the message stored in Redis');
    await redis.del(messageKey);

    up = true;
    expect(await n.admin('POST', `/v1/messages/${id}/retry`, { endpointId })).toEqual({
      status: 202,
      body: { queued: 1 },
    });
    await eventually(() => deliveredIds(s).length === 1, 'the re-send delivered');

    // A second instance (a restart, or another replica) builds its index from the DLQ alone.
    const second = await startNotifier({ retryScheduleMs: [0] }, { prefix: n.prefix });
    cleanups.push(async () => {
      await second.stop();
      expect(second.fatalErrors).toEqual([]);
    });
    expect(await second.admin('POST', `/v1/messages/${id}/retry`, {})).toEqual({
      status: 202,
      body: { queued: 1 },
    });
    await eventually(() => deliveredIds(s).length === 2, 'the second re-send delivered');
    expect(deliveredIds(s)).toEqual([id, id]);
    expect(await second.admin('POST', '/v1/messages/msg_unknown/retry', {})).toMatchObject({
      status: 404,
      body: { error: { code: 'message_not_found' } },
    });
  });
});
