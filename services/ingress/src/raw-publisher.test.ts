import pino from 'pino';
import type { Message } from 'kafkajs';
import type { Provider } from '@ampflow/contracts';
import { createMetricsRegistry } from '@ampflow/observability';
import { metricValue } from '@ampflow/testing';
import { DependencyError } from '@ampflow/runtime';
import { createIngressMetrics } from './metrics';
import { createRawPublisher, type EventIntake, type RawPublisherDeps } from './raw-publisher';
import { startDeadline, type RequestDeadline } from './request-deadline';

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

  it("rejects with deadline_exceeded once the request's deadline passes before the ack, well before publishTimeoutMs", async () => {
    const { publisher, producer } = aPublisher({ publishTimeoutMs: 60_000 });

    const answer = publisher.publish(anIntake(), Buffer.from('{}'), 'application/json', startDeadline(20));
    await expect(answer).rejects.toMatchObject({
      code: 'deadline_exceeded',
      stage: 'waiting for Kafka',
      retriable: true,
    });
    // The copy handed to the producer is still in flight: a redelivery will find it.
    expect(producer.sends).toHaveLength(1);
    expect(publisher.inFlightCount()).toBe(1);
  });

  it('hands nothing to the producer when the deadline passes during the duplicate check', async () => {
    let answerCheck: (seen: boolean) => void = () => undefined;
    const slowSeenStore = {
      isSeen: () => new Promise<boolean>((resolve) => (answerCheck = resolve)),
      markSeen: () => Promise.resolve(),
    };
    const { publisher, producer, registry } = aPublisher({ seenStore: slowSeenStore });

    const answer = publisher.publish(anIntake(), Buffer.from('{}'), 'application/json', startDeadline(20));
    await expect(answer).rejects.toMatchObject({
      code: 'deadline_exceeded',
      stage: 'checking for duplicates',
    });
    answerCheck(false);
    await settle();
    expect(producer.sends).toHaveLength(0);
    expect(publisher.inFlightCount()).toBe(0);
    // A deadline is not a Redis failure.
    expect(metricValue(await registry.metrics(), 'ingress_dedup_errors_total', { operation: 'check' })).toBe(
      undefined,
    );
  });

  it('hands nothing to the producer when the deadline timer fires before its clock says it has passed', async () => {
    // Node's timer may fire a fraction of a millisecond early by the monotonic clock: the deadline's own error
    // must end the request then, not be taken for a Redis failure ("publish anyway").
    const early = startDeadline(5);
    const deadline: RequestDeadline = { ...early, expired: () => false };
    const { publisher, producer, registry } = aPublisher({
      seenStore: { isSeen: () => new Promise<boolean>(() => undefined), markSeen: () => Promise.resolve() },
    });

    await expect(
      publisher.publish(anIntake(), Buffer.from('{}'), 'application/json', deadline),
    ).rejects.toMatchObject({ code: 'deadline_exceeded', stage: 'checking for duplicates' });
    await settle();
    expect(producer.sends).toHaveLength(0);
    expect(metricValue(await registry.metrics(), 'ingress_dedup_errors_total', { operation: 'check' })).toBe(
      undefined,
    );
  });

  it('bounds a redelivery waiting on the copy in flight by its own deadline', async () => {
    const { publisher, producer } = aPublisher({ publishTimeoutMs: 60_000 });
    void publisher.publish(anIntake(), Buffer.from('{}'), 'application/json').catch(() => undefined);
    await settle();

    const retried = publisher.publish(anIntake(), Buffer.from('{}'), 'application/json', startDeadline(20));
    await expect(retried).rejects.toMatchObject({ code: 'deadline_exceeded', stage: 'waiting for Kafka' });
    expect(producer.sends).toHaveLength(1);
    producer.sends[0]!.ack();
  });

  it('stores a redelivery whose earlier copy Kafka then refused: its own copy is published and accepted', async () => {
    const { publisher, producer, seenStore } = aPublisher({ publishTimeoutMs: 20 });

    // The first delivery is answered 503 while its copy is still pending.
    const first = publisher.publish(anIntake(), Buffer.from('{"n":1}'), 'application/json');
    await expect(first).rejects.toMatchObject({ code: 'kafka_timeout' });

    // The provider's retry waits on that copy, which the producer then gives up on.
    const retried = publisher.publish(
      anIntake(),
      Buffer.from('{"n":2}'),
      'application/json',
      startDeadline(60_000),
    );
    await settle();
    expect(producer.sends).toHaveLength(1);
    producer.sends[0]!.fail(new DependencyError('kafka_unavailable', 'gave up'));
    await settle();
    await settle();

    // Not refused, not 'duplicate' (nothing is stored): the retry publishes its own copy.
    expect(producer.sends).toHaveLength(2);
    expect(producer.sends[1]!.messages[0]!.value).toEqual(Buffer.from('{"n":2}'));
    producer.sends[1]!.ack();
    await expect(retried).resolves.toBe('accepted');
    await settle();
    expect(seenStore.seen.has('smartcar:evt-1')).toBe(true);
    expect(publisher.inFlightCount()).toBe(0);
  });
});
