import type { Kafka } from 'kafkajs';
import { Topics } from '@ampflow/contracts';
import { collectRecords, eventually, lowerMaxMessageBytes, testKafka, uniqueName } from '@ampflow/testing';
import { retryTopic, RETRY_TIERS } from '../src/delivery/retry-tiers';
import { telemetry } from './fixtures';
import { managedNotifiers, registerSink, type NotifierUnderTest } from './harness';

/**
 * Issue 15, item 1: a record that Kafka refuses for good (`record_too_large`, over the topic's
 * `max.message.bytes`) on a retry tier or the deliveries DLQ. Before, the durable writer retried it forever: the
 * delivery never finished and its partition's committed offset never moved again (after a restart, the same).
 * The topics' `max.message.bytes` is lowered once the notifier runs.
 */
jest.setTimeout(90_000);

const { notifier, sink, cleanups } = managedNotifiers();
let kafka: Kafka;

beforeAll(() => {
  kafka = testKafka();
});

/** Every source partition of the notifier's group committed up to its end. */
async function committedToEnd(n: NotifierUnderTest, topic: string): Promise<boolean> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [ends, [committed]] = await Promise.all([
      admin.fetchTopicOffsets(topic),
      admin.fetchOffsets({ groupId: n.settings.groupId, topics: [topic] }),
    ]);
    // A partition that never held a record has nothing to commit.
    return ends.every(
      (end) =>
        end.high === '0' ||
        committed!.partitions.find((p) => p.partition === end.partition)?.offset === end.high,
    );
  } finally {
    await admin.disconnect();
  }
}

/** A telemetry record whose webhook body is about `bytes` long (its `triggers`). */
const large = (bytes: number) =>
  telemetry(`telematica:${uniqueName('v')}`, 1, {
    triggers: Array.from({ length: Math.ceil(bytes / 20) }, (_, i) => `Charge.Trigger${i}`),
  });

describe('records too large for their topic', () => {
  it('a retry too large for its tier becomes a dead letter (record_too_large) and the partition moves on', async () => {
    const n = await notifier();
    // The 1 s tier (every retry of the fast schedule) takes records up to 4 KiB; the body is 6 KB.
    await lowerMaxMessageBytes(kafka, retryTopic(n.prefix, RETRY_TIERS[0]!), 4_096);
    const s = await sink((_h, _q, res) => void res.writeHead(500).end());
    const endpointId = await registerSink(n, s, { eventTypes: ['vehicle.telemetry'] });
    const dlq = await collectRecords(kafka, [n.prefix + Topics.webhookDeliveriesDlq]);
    cleanups.push(() => dlq.stop());

    await n.produce(Topics.vehicleTelemetry, [large(6_000)]);
    const [dead] = await dlq.waitFor(1, 30_000);
    expect(dead!.headers).toMatchObject({
      'error-code': 'record_too_large',
      'endpoint-id': endpointId,
      'message-id': s.received[0]!.id,
      attempts: '1',
    });
    expect(dead!.headers['error-message']).toMatch(/exceeds what .*retry\.1s accepts/);
    // The body is kept: the DLQ takes it, `retry` and `recover` can send it again.
    expect(JSON.parse(dead!.value!.toString('utf8'))).toEqual(s.received[0]!.body);
    await eventually(() => committedToEnd(n, n.topics.telemetry), 'the source record committed');
    // Exactly the one attempt: no retry went out, nothing is left pending.
    expect(s.received).toHaveLength(1);
  });

  it('a dead letter too large for the DLQ is written without its body, with the reason; so is an unreadable source record', async () => {
    const n = await notifier();
    await lowerMaxMessageBytes(kafka, n.prefix + Topics.webhookDeliveriesDlq, 2_048);
    // The receiver aborts the message: a dead letter at once (aborted_by_receiver).
    const s = await sink(
      (_h, _q, res) => void res.writeHead(400, { 'webhook-delivery': 'abort-message' }).end(),
    );
    const endpointId = await registerSink(n, s, { eventTypes: ['vehicle.telemetry'] });
    const dlq = await collectRecords(kafka, [n.prefix + Topics.webhookDeliveriesDlq]);
    cleanups.push(() => dlq.stop());

    await n.produce(Topics.vehicleTelemetry, [large(6_000)]);
    const [dead] = await dlq.waitFor(1, 30_000);
    expect(dead!.value).toBeNull();
    expect(dead!.key).toBe(`${s.received[0]!.id}:${endpointId}`);
    expect(dead!.headers).toMatchObject({
      'error-code': 'aborted_by_receiver',
      'endpoint-id': endpointId,
      'message-id': s.received[0]!.id,
      'event-type': 'vehicle.telemetry',
    });
    expect(dead!.headers['body-omitted']).toMatch(/exceeds what .*dlq accepts/);

    // Not Avro at all, 6 KB: undecodable, and too large for this DLQ with its bytes.
    const producer = kafka.producer();
    await producer.connect();
    try {
      await producer.send({
        topic: n.topics.telemetry,
        messages: [{ key: 'junk', value: Buffer.alloc(6_000, 0x7a) }],
      });
    } finally {
      await producer.disconnect();
    }
    const [, junk] = await dlq.waitFor(2, 30_000);
    expect(junk!.value).toBeNull();
    expect(junk!.headers).toMatchObject({
      'error-code': 'undecodable',
      'source-topic': n.topics.telemetry,
    });
    expect(junk!.headers['body-omitted']).toMatch(/exceeds/);
    await eventually(() => committedToEnd(n, n.topics.telemetry), 'both source records committed');
  });
});
