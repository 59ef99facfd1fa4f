import pino from 'pino';
import type { Kafka } from 'kafkajs';
import { createReliableProducer, type ReliableProducer } from '@ampflow/kafka';
import { eventually, testKafka, uniqueName } from '@ampflow/testing';
import { createSecretBox, generateSecretsKey } from '../src/endpoints/secret-box';
import { createEndpointStore, type EndpointChange, type EndpointStore } from '../src/endpoints/store';

/**
 * The endpoint store on the real broker: endpoints live only in their compacted topic, so a new store (as after
 * a restart, or on another instance) reading the same topic must end up with exactly what the first one wrote.
 */
jest.setTimeout(120_000);

const logger = pino({ level: process.env.AMPFLOW_TEST_LOG ?? 'silent' });
const T0 = Date.parse('2025-03-01T10:00:00Z');
const T1 = T0 + 3_600_000;
const secretBox = createSecretBox({ current: generateSecretsKey('test') });

let cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  cleanups = [];
});

const fatal: unknown[] = [];
afterEach(() => {
  expect(fatal).toEqual([]);
  fatal.length = 0;
});

async function aProducer(kafka: Kafka): Promise<ReliableProducer> {
  const producer = createReliableProducer(kafka, { logger });
  await producer.connect();
  cleanups.push(() => producer.disconnect(1_000));
  return producer;
}

/** A store with its own producer, as each notifier instance has; started and caught up. */
async function aStore(
  kafka: Kafka,
  topic: string,
  before?: (store: EndpointStore) => void,
): Promise<EndpointStore> {
  const store = createEndpointStore({
    kafka,
    producer: await aProducer(kafka),
    topic,
    secretBox,
    logger,
    onFatal: (error) => fatal.push(error),
  });
  before?.(store);
  await store.start();
  cleanups.push(() => store.stop());
  await eventually(() => store.ready(), 'the endpoint store to catch up');
  return store;
}

describe('endpoint store on Kafka', () => {
  it('create, update, rotate, disable and delete persist for a new store reading the same topic', async () => {
    const kafka = testKafka();
    const topic = uniqueName('notifier.endpoints');
    const first = await aStore(kafka, topic);
    expect(first.list()).toEqual([]);

    const kept = await first.create(
      { url: 'https://hooks.example.com/a', eventTypes: ['charging_session.ended'], vehicleIds: ['veh-1'] },
      T0,
    );
    const rotatedOne = await first.create(
      { url: 'https://hooks.example.com/b', description: 'fleet B' },
      T0 + 1,
    );
    const deleted = await first.create({ url: 'https://hooks.example.com/c' }, T0 + 2);
    await first.update(kept.id, { throttleRate: 25, description: 'fleet A' }, T1);
    const rotated = await first.rotateSecret(rotatedOne.id, T1);
    await first.disable(kept.id, 'failing', T1);
    expect(await first.remove(deleted.id)).toBe(true);
    expect(rotated.secrets.previous).toEqual({ secret: rotatedOne.secrets.current, rotatedAt: T1 });

    const second = await aStore(kafka, topic);
    expect(second.list()).toEqual(first.list());
    expect(second.list().map((e) => e.id)).toEqual([kept.id, rotatedOne.id]);
    expect(second.get(kept.id)).toMatchObject({
      url: 'https://hooks.example.com/a',
      eventTypes: ['charging_session.ended'],
      vehicleIds: ['veh-1'],
      throttleRate: 25,
      description: 'fleet A',
      enabled: false,
      disabledReason: 'failing',
      secrets: { current: kept.secrets.current },
    });
    expect(second.get(rotatedOne.id)?.secrets).toEqual(rotated.secrets);
    expect(second.get(deleted.id)).toBeUndefined();
  });

  it("another instance's writes reach a running store through onChange", async () => {
    const kafka = testKafka();
    const topic = uniqueName('notifier.endpoints');
    const writer = await aStore(kafka, topic);
    const existing = await writer.create({ url: 'https://hooks.example.com/existing' }, T0);

    const changes: EndpointChange[] = [];
    const reader = await aStore(kafka, topic, (store) => store.onChange((c) => changes.push(c)));
    expect(changes).toEqual([{ id: existing.id, after: existing }]);

    const updated = await writer.update(existing.id, { enabled: false }, T1);
    const created = await writer.create({ url: 'https://hooks.example.com/new' }, T1);
    await writer.remove(existing.id);
    await eventually(() => changes.length === 4, 'the reader to see three more changes');
    expect(changes.slice(1)).toEqual([
      { id: existing.id, before: existing, after: updated },
      { id: created.id, after: created },
      { id: existing.id, before: updated },
    ]);
    expect(reader.list()).toEqual([created]);
  });

  it('concurrent writes to one endpoint are all kept', async () => {
    const kafka = testKafka();
    const topic = uniqueName('notifier.endpoints');
    const store = await aStore(kafka, topic);
    const created = await store.create({ url: 'https://hooks.example.com/a' }, T0);
    await Promise.all([
      store.update(created.id, { description: 'd' }, T1),
      store.update(created.id, { userIds: ['user-1'] }, T1),
      store.rotateSecret(created.id, T1),
      store.update(created.id, { providers: ['telematica'] }, T1),
    ]);
    const expected = {
      description: 'd',
      userIds: ['user-1'],
      providers: ['telematica'],
      secrets: { previous: { secret: created.secrets.current, rotatedAt: T1 } },
    };
    expect(store.get(created.id)).toMatchObject(expected);
    const again = await aStore(kafka, topic);
    expect(again.get(created.id)).toMatchObject(expected);
  });

  it('skips a record that is not an endpoint and keeps the others', async () => {
    const kafka = testKafka();
    const topic = uniqueName('notifier.endpoints');
    const store = await aStore(kafka, topic);
    const good = await store.create({ url: 'https://hooks.example.com/a' }, T0);
    const producer = await aProducer(kafka);
    await producer.send(topic, [{ key: 'ep_garbage', value: Buffer.from('{"not":"an endpoint"}') }]);
    const again = await aStore(kafka, topic);
    expect(again.list()).toEqual([good]);
  });
});
