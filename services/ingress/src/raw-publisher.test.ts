import pino from 'pino';
import type { Message } from 'kafkajs';
import type { Provider } from '@ampflow/contracts';
import { createMetricsRegistry } from '@ampflow/observability';
import { metricValue } from '@ampflow/testing';
import { DependencyError } from '@ampflow/runtime';
import { createIngressMetrics } from './metrics';
import { createRawPublisher, type EventIntake, type RawPublisherDeps } from './raw-publisher';

/** A producer whose sends settle only when the test says so. */
function aFakeProducer() {
  const sends: Array<{ topic: string; messages: Message[]; ack: () => void; fail: (err: unknown) => void }> =
    [];
  return {
    sends,
    send: (topic: string, messages: Message[]) =>
      new Promise<void>((resolve, reject) => {
        sends.push({ topic, messages, ack: resolve, fail: reject });
      }),
  };
}

/** A seen store in memory; `failing` makes its calls reject like a Redis that is down. */
function aFakeSeenStore(options: { failing?: boolean } = {}) {
  const seen = new Set<string>();
  const down = () => Promise.reject(new Error('redis down'));
  return {
    seen,
    isSeen: (provider: Provider, eventId: string) =>
      options.failing ? down() : Promise.resolve(seen.has(`${provider}:${eventId}`)),
    markSeen: async (provider: Provider, eventId: string) => {
      if (options.failing) return down();
      seen.add(`${provider}:${eventId}`);
    },
  };
}

function anIntake(overrides: Partial<EventIntake> = {}): EventIntake {
  return {
    kind: 'event',
    provider: 'smartcar',
    eventId: 'evt-1',
    eventType: 'VEHICLE_STATE',
    key: 'vehicle-1',
    knownType: true,
    ...overrides,
  };
}

function aPublisher(overrides: Partial<RawPublisherDeps> = {}) {
  const registry = createMetricsRegistry('ingress', { defaultMetrics: false });
  const metrics = createIngressMetrics(registry, { kafkaReady: () => true, inflightBytes: () => 0 });
  const producer = aFakeProducer();
  const seenStore = aFakeSeenStore();
  const deps: RawPublisherDeps = {
    producer,
    seenStore,
    topicOf: (provider) => `raw-${provider}`,
    publishTimeoutMs: 60_000,
    metrics,
    logger: pino({ level: 'silent' }),
    now: () => new Date('2026-01-02T03:04:05.678Z'),
    ...overrides,
  };
  return { publisher: createRawPublisher(deps), producer, seenStore, registry };
}

/** Lets the promise callbacks queued so far run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('createRawPublisher', () => {
  it('publishes the raw bytes with the raw headers, answers accepted on the ack and marks the id seen', async () => {
    const { publisher, producer, seenStore } = aPublisher();
    const body = Buffer.from('{"eventId":"evt-1"}');

    const answer = publisher.publish(anIntake(), body, 'application/json; charset=utf-8');
    await settle();
    expect(producer.sends).toHaveLength(1);
    expect(producer.sends[0]!.topic).toBe('raw-smartcar');
    expect(producer.sends[0]!.messages).toEqual([
      {
        key: 'vehicle-1',
        value: body,
        headers: {
          provider: 'smartcar',
          'event-id': 'evt-1',
          'event-type': 'VEHICLE_STATE',
          'received-at': '2026-01-02T03:04:05.678Z',
          'content-type': 'application/json; charset=utf-8',
        },
      },
    ]);

    producer.sends[0]!.ack();
    await expect(answer).resolves.toBe('accepted');
    await settle();
    expect(seenStore.seen.has('smartcar:evt-1')).toBe(true);
    expect(publisher.inFlightCount()).toBe(0);
  });

  it('answers duplicate without publishing for an id already seen', async () => {
    const { publisher, producer, seenStore } = aPublisher();
    seenStore.seen.add('telematica:msg-9');

    const answer = await publisher.publish(
      anIntake({ provider: 'telematica', eventId: 'msg-9' }),
      Buffer.from('{}'),
      'application/json',
    );
    expect(answer).toBe('duplicate');
    expect(producer.sends).toHaveLength(0);
  });

  it('keys the seen check by provider: the same id from another provider is published', async () => {
    const { publisher, producer, seenStore } = aPublisher();
    seenStore.seen.add('telematica:evt-1');

    const answer = publisher.publish(
      anIntake({ provider: 'smartcar' }),
      Buffer.from('{}'),
      'application/json',
    );
    await settle();
    producer.sends[0]!.ack();
    await expect(answer).resolves.toBe('accepted');
  });

  it('lets a redelivery wait on the copy in flight instead of publishing it again', async () => {
    const { publisher, producer } = aPublisher();

    const first = publisher.publish(anIntake(), Buffer.from('{}'), 'application/json');
    await settle();
    const second = publisher.publish(anIntake(), Buffer.from('{}'), 'application/json');
    await settle();
    expect(producer.sends).toHaveLength(1);
    expect(publisher.inFlightCount()).toBe(1);

    producer.sends[0]!.ack();
    await expect(first).resolves.toBe('accepted');
    await expect(second).resolves.toBe('duplicate');
  });

  it('publishes anyway when the seen store is down, and counts the failures', async () => {
    const { publisher, producer, registry } = aPublisher({ seenStore: aFakeSeenStore({ failing: true }) });

    const answer = publisher.publish(anIntake(), Buffer.from('{}'), 'application/json');
    await settle();
    producer.sends[0]!.ack();
    await expect(answer).resolves.toBe('accepted');
    await settle();

    const metrics = await registry.metrics();
    expect(
      ['check', 'mark'].map((operation) => metricValue(metrics, 'ingress_dedup_errors_total', { operation })),
    ).toEqual([1, 1]);
    expect(publisher.inFlightCount()).toBe(0);
  });

  it('rejects with the retriable kafka_timeout when the ack is late, and keeps the record in flight until Kafka settles', async () => {
    const { publisher, producer, seenStore } = aPublisher({ publishTimeoutMs: 20 });

    const answer = publisher.publish(anIntake(), Buffer.from('{}'), 'application/json');
    await expect(answer).rejects.toMatchObject({ code: 'kafka_timeout', retriable: true });
    expect(publisher.inFlightCount()).toBe(1);

    // The provider's retry meets the copy still on its way; the late ack then stores the id.
    const retried = publisher.publish(anIntake(), Buffer.from('{}'), 'application/json');
    await settle();
    expect(producer.sends).toHaveLength(1);
    producer.sends[0]!.ack();
    await expect(retried).resolves.toBe('duplicate');
    await settle();
    expect(seenStore.seen.has('smartcar:evt-1')).toBe(true);
    expect(publisher.inFlightCount()).toBe(0);
  });

  it('passes a producer failure on, forgets the flight and does not mark the id seen', async () => {
    const { publisher, producer, seenStore, registry } = aPublisher();
    const refused = new DependencyError('kafka_backlog', 'too much waiting');

    const answer = publisher.publish(anIntake(), Buffer.from('{}'), 'application/json');
    await settle();
    producer.sends[0]!.fail(refused);
    await expect(answer).rejects.toBe(refused);
    await settle();

    expect(seenStore.seen.size).toBe(0);
    expect(publisher.inFlightCount()).toBe(0);
    const metrics = await registry.metrics();
    const published = (result: string) =>
      metricValue(metrics, 'ingress_publish_duration_seconds_count', { provider: 'smartcar', result });
    expect([published('failed'), published('ok')]).toEqual([1, undefined]);
  });
});
