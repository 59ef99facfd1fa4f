import pino from 'pino';
import type { Kafka } from 'kafkajs';
import {
  createConsumer,
  createReliableProducer,
  type ConsumedRecord,
  type ConsumerOptions,
  type KafkaConsumer,
  type ReliableProducer,
} from '@ampflow/kafka';
import { collectRecords, createTopics, eventually, testKafka, uniqueName } from '@ampflow/testing';

/**
 * The one consumer against the real broker: the orderings, the committed offset after the finished prefix,
 * the commit policy, back-pressure and a rebalance between two members.
 */
jest.setTimeout(120_000);

const logger = pino({ level: process.env.AMPFLOW_TEST_LOG ?? 'silent' });
const kafka: Kafka = testKafka();

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

async function aProducer(): Promise<ReliableProducer> {
  const producer = createReliableProducer(kafka, { logger });
  await producer.connect();
  cleanups.push(() => producer.disconnect(1_000));
  return producer;
}

async function aTopic(partitions = 1): Promise<string> {
  const topic = uniqueName('consumer');
  await createTopics(kafka, [topic, `${topic}.dlq`], partitions);
  return topic;
}

/** A started consumer, stopped after the test unless the test stopped it. */
async function aConsumer(
  options: Omit<ConsumerOptions, 'kafka' | 'logger' | 'onFatal'>,
): Promise<KafkaConsumer> {
  const consumer = createConsumer({
    kafka,
    logger,
    onFatal: (error) => fatal.push(error),
    sessionTimeoutMs: 6_000,
    maxWaitTimeMs: 200,
    ...options,
  });
  let stopped = false;
  const stop = consumer.stop.bind(consumer);
  consumer.stop = async (drainMs) => {
    stopped = true;
    await stop(drainMs);
  };
  cleanups.push(async () => (stopped ? undefined : stop(1_000)));
  await consumer.start();
  return consumer;
}

async function committedOffsets(groupId: string, topic: string): Promise<Record<number, string>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [entry] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return Object.fromEntries((entry?.partitions ?? []).map((p) => [p.partition, p.offset]));
  } finally {
    await admin.disconnect();
  }
}

const offsetOf = (record: ConsumedRecord) => Number(record.message.offset);

describe('createConsumer', () => {
  it('key ordering: overlapping chunks keep each key in offset order, every record once, committed to the end', async () => {
    const topic = await aTopic();
    const output = `${topic}.out`;
    await createTopics(kafka, [output], 1);
    const producer = await aProducer();
    const keys = ['a', 'b', 'c', 'd', 'e'];
    await producer.send(
      topic,
      Array.from({ length: 300 }, (_, i) => ({ key: keys[i % 7 === 0 ? 0 : i % 5], value: String(i) })),
    );
    const groupId = uniqueName('group');
    const lags: number[] = [];
    const consumer = await aConsumer({
      groupId,
      topics: [topic],
      ordering: 'key',
      maxChunkRecords: 7,
      onBatchDone: ({ lag }) => lags.push(lag),
      producer,
      handler: {
        perRecord: ({ message }) => ({
          outputs: [{ topic: output, message: { key: message.key, value: message.value } }],
        }),
      },
    });
    const collector = await collectRecords(kafka, [output]);
    cleanups.push(() => collector.stop());
    const out = await collector.waitFor(300);
    await consumer.stop();

    const values = out.map((r) => Number(r.value!.toString()));
    expect(new Set(values).size).toBe(300);
    for (const key of keys) {
      const ofKey = out.filter((r) => r.key === key).map((r) => Number(r.value!.toString()));
      expect(ofKey).toEqual([...ofKey].sort((x, y) => x - y));
    }
    expect(await committedOffsets(groupId, topic)).toEqual({ 0: '300' });
    // Reported with the batches while records were in flight, and 0 once every record finished.
    expect(Math.max(...lags)).toBeGreaterThan(0);
    expect(lags.at(-1)).toBe(0);
  });

  it('unordered: commits only the finished prefix; a record let go on stop is read again with everything after it', async () => {
    const topic = await aTopic();
    const producer = await aProducer();
    await producer.send(
      topic,
      [0, 1, 2, 3, 4].map((i) => ({ key: `k${i}`, value: String(i) })),
    );
    const groupId = uniqueName('group');
    const finished: number[] = [];
    const first = await aConsumer({
      groupId,
      topics: [topic],
      ordering: 'unordered',
      commitIntervalMs: 20,
      handler: {
        take: async (records, signal) =>
          records.map((record) => {
            // Offset 0 is held until the consumer lets it go; the others finish at once.
            if (offsetOf(record) !== 0) {
              finished.push(offsetOf(record));
              return Promise.resolve(true);
            }
            return new Promise<boolean>((resolve) =>
              signal.addEventListener('abort', () => resolve(false), { once: true }),
            );
          }),
      },
    });
    await eventually(() => finished.length === 4, 'offsets 1 to 4 finished');
    expect(first.inFlight()).toBe(1);
    await first.stop(1_000);
    expect(await committedOffsets(groupId, topic)).toEqual({ 0: '0' });

    const again: number[] = [];
    await aConsumer({
      groupId,
      topics: [topic],
      ordering: 'unordered',
      handler: {
        take: async (records) =>
          records.map((record) => {
            again.push(offsetOf(record));
            return Promise.resolve(true);
          }),
      },
    });
    await eventually(() => again.length === 5, 'the five records read again');
    expect(again).toEqual([0, 1, 2, 3, 4]);
  });

  it('commits after the record threshold rather than per batch, and what is left on stop', async () => {
    const topic = await aTopic();
    const producer = await aProducer();
    await producer.send(
      topic,
      Array.from({ length: 50 }, (_, i) => ({ key: 'k', value: String(i) })),
    );
    const groupId = uniqueName('group');
    let handled = 0;
    const consumer = await aConsumer({
      groupId,
      topics: [topic],
      ordering: 'partition',
      maxChunkRecords: 10,
      commitIntervalMs: 10 * 60_000,
      commitAfterRecords: 20,
      producer,
      handler: {
        perRecord: () => {
          handled += 1;
          return { outputs: [] };
        },
      },
    });
    const commits: string[] = [];
    consumer.consumer.on(consumer.consumer.events.COMMIT_OFFSETS, (event) => {
      for (const t of event.payload.topics) for (const p of t.partitions) commits.push(String(p.offset));
    });
    await eventually(() => handled === 50 && commits.includes('40'), 'every record handled, 40 committed');
    expect(commits).toEqual(['20', '40']);
    expect(await committedOffsets(groupId, topic)).toEqual({ 0: '40' });
    await consumer.stop();
    expect(commits).toEqual(['20', '40', '50']);
    expect(await committedOffsets(groupId, topic)).toEqual({ 0: '50' });
  });

  it('stops fetching a partition with too many records in flight, and goes on as they finish', async () => {
    const topic = await aTopic();
    const producer = await aProducer();
    await producer.send(
      topic,
      Array.from({ length: 40 }, (_, i) => ({ key: `k${i}`, value: String(i) })),
    );
    const held: Array<() => void> = [];
    const taken: number[] = [];
    let mostInFlight = 0;
    const consumer: KafkaConsumer = await aConsumer({
      groupId: uniqueName('group'),
      topics: [topic],
      ordering: 'unordered',
      maxInFlightPerPartition: 8,
      handler: {
        take: async (records) => {
          mostInFlight = Math.max(mostInFlight, consumer.inFlight());
          return records.map((record) => {
            taken.push(offsetOf(record));
            return new Promise<boolean>((resolve) => held.push(() => resolve(true)));
          });
        },
      },
    });
    for (let round = 0; taken.length < 40; round += 1) {
      await eventually(() => held.length > 0, `records taken (round ${round})`);
      for (const release of held.splice(0)) release();
    }
    expect(taken).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(mostInFlight).toBeLessThanOrEqual(8);
  });

  it('holds records fetched past the in-flight limit instead of fetching them again, and commits only what finished', async () => {
    const topic = await aTopic();
    const producer = await aProducer();
    await producer.send(
      topic,
      Array.from({ length: 40 }, (_, i) => ({ key: `k${i}`, value: String(i) })),
    );
    const groupId = uniqueName('group');
    const held: Array<() => void> = [];
    const taken: number[] = [];
    let mostInFlight = 0;
    /** Records of this topic in the batches kafkajs handed over: 40 when none is fetched twice. */
    let fetchedRecords = 0;
    const consumer: KafkaConsumer = await aConsumer({
      groupId,
      topics: [topic],
      ordering: 'unordered',
      maxInFlightPerPartition: 8,
      maxChunkRecords: 4,
      handler: {
        take: async (records) => {
          mostInFlight = Math.max(mostInFlight, consumer.inFlight());
          return records.map((record) => {
            taken.push(offsetOf(record));
            return new Promise<boolean>((resolve) => held.push(() => resolve(true)));
          });
        },
      },
    });
    consumer.consumer.on(consumer.consumer.events.START_BATCH_PROCESS, (event) => {
      if (event.payload.topic === topic) fetchedRecords += event.payload.batchSize;
    });
    // The first 8 are in flight; the other 32 are held, not committed.
    await eventually(() => held.length === 8, 'eight records in flight');
    expect(taken).toEqual(Array.from({ length: 8 }, (_, i) => i));
    // Finishing the first 4 (half) takes 4 held ones at once; the commit covers only the finished prefix.
    for (const release of held.splice(0, 4)) release();
    await eventually(() => taken.length === 12, 'four held records taken');
    expect(mostInFlight).toBeLessThanOrEqual(8);
    for (let round = 0; taken.length < 40; round += 1) {
      await eventually(() => held.length > 0, `records taken (round ${round})`);
      for (const release of held.splice(0)) release();
    }
    await eventually(() => {
      for (const release of held.splice(0)) release();
      return consumer.inFlight() === 0;
    }, 'every record finished');
    expect(taken).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(mostInFlight).toBeLessThanOrEqual(8);
    expect(fetchedRecords).toBe(40);
    await consumer.stop();
    expect(await committedOffsets(groupId, topic)).toEqual({ 0: '40' });
  });

  it('stops fetching a partition that holds maxHeldPerPartition records, and fetches again once half were taken', async () => {
    const topic = await aTopic();
    const producer = await aProducer();
    const batch = (from: number) =>
      Array.from({ length: 40 }, (_, i) => ({ key: `k${from + i}`, value: String(from + i) }));
    await producer.send(topic, batch(0));
    const held: Array<() => void> = [];
    const taken: number[] = [];
    let fetchedRecords = 0;
    let fetches = 0;
    const consumer: KafkaConsumer = await aConsumer({
      groupId: uniqueName('group'),
      topics: [topic],
      ordering: 'unordered',
      maxInFlightPerPartition: 4,
      maxHeldPerPartition: 10,
      handler: {
        take: async (records) =>
          records.map((record) => {
            taken.push(offsetOf(record));
            return new Promise<boolean>((resolve) => held.push(() => resolve(true)));
          }),
      },
    });
    consumer.consumer.on(consumer.consumer.events.START_BATCH_PROCESS, (event) => {
      if (event.payload.topic === topic) fetchedRecords += event.payload.batchSize;
    });
    consumer.consumer.on(consumer.consumer.events.FETCH, () => (fetches += 1));
    await eventually(() => taken.length === 4, 'four records in flight, the other 36 held');
    // Held 36 >= 10: the partition is paused. Records written now are not fetched, however many fetches go out.
    await producer.send(topic, batch(40));
    const fetchesBefore = fetches;
    await eventually(() => fetches >= fetchesBefore + 3, 'three more fetches');
    expect(fetchedRecords).toBe(40);
    // Taking the held records down to 5 (half of 10) resumes the partition: the next 40 are fetched once each.
    await eventually(() => {
      for (const release of held.splice(0)) release();
      return taken.length === 80 && consumer.inFlight() === 0;
    }, 'every record taken and finished');
    expect(taken).toEqual(Array.from({ length: 80 }, (_, i) => i));
    expect(fetchedRecords).toBe(80);
  });

  it('paces fetches: records that keep coming are fetched together, not one fetch each, and all handled once', async () => {
    const topic = await aTopic(3);
    const producer = await aProducer();
    const seen: number[] = [];
    const consumer = await aConsumer({
      groupId: uniqueName('group'),
      topics: [topic],
      ordering: 'key',
      fetchIntervalMs: 100,
      producer,
      handler: {
        perRecord: (record) => {
          seen.push(Number(String(record.message.value)));
          return { outputs: [] };
        },
      },
    });
    // A steady trickle: one record every ~5 ms for about 1.5 s, each sent (and acknowledged) on its own.
    let fetchesWithRecords = 0;
    consumer.consumer.on(consumer.consumer.events.START_BATCH_PROCESS, (event) => {
      if (event.payload.batchSize > 0) fetchesWithRecords += 1;
    });
    const total = 300;
    for (let i = 0; i < total; i += 1) {
      await producer.send(topic, [{ key: `k${i % 7}`, value: String(i) }]);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await eventually(() => seen.length >= total, 'every record handled');
    expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, i) => i));
    // Unpaced, a record every 5 ms would be about one fetch (and one batch) each: 300. Paced at 100 ms over
    // ~1.5-3 s, at most ~30 fetches with up to 3 partitions' batches each.
    expect(fetchesWithRecords).toBeLessThan(120);
  });

  it('reads records larger than the fetch size limits (maxBytes, maxBytesPerPartition), each once and in order', async () => {
    const topic = await aTopic();
    const producer = await aProducer();
    // One send per record: separate record batches, each larger than both limits.
    for (let i = 0; i < 6; i += 1)
      await producer.send(topic, [{ key: 'k', value: `${i}:${'x'.repeat(3_000)}` }]);
    // And one larger than the default limit per partition (256 KiB), read with the defaults below.
    await producer.send(topic, [{ key: 'k', value: `6:${'y'.repeat(300 * 1024)}` }]);
    const seen = (groupId: string, limits: Pick<ConsumerOptions, 'maxBytes' | 'maxBytesPerPartition'>) => {
      const values: string[] = [];
      return aConsumer({
        groupId,
        topics: [topic],
        ordering: 'partition',
        ...limits,
        handler: {
          take: async (records) =>
            records.map((record) => {
              values.push(record.message.value!.toString().split(':')[0]!);
              return Promise.resolve(true);
            }),
        },
      }).then(() => values);
    };
    const small = await seen(uniqueName('group'), { maxBytes: 2_048, maxBytesPerPartition: 1_024 });
    const defaults = await seen(uniqueName('group'), {});
    const all = ['0', '1', '2', '3', '4', '5', '6'];
    await eventually(() => small.length >= 7 && defaults.length >= 7, 'every record read under both limits');
    expect(small).toEqual(all);
    expect(defaults).toEqual(all);
  });

  it('loses nothing it held when a second member joins: kept partitions go on, moved ones are read again', async () => {
    const topic = await aTopic(4);
    const producer = await aProducer();
    const groupId = uniqueName('group');
    const seen = new Map<string, number>();
    const options = (): Omit<ConsumerOptions, 'kafka' | 'logger' | 'onFatal'> => ({
      groupId,
      topics: [topic],
      ordering: 'unordered',
      commitIntervalMs: 100,
      // Four in flight per partition, the rest of each fetch held: most records are held at the rebalance.
      maxInFlightPerPartition: 4,
      maxHeldPerPartition: 1_000,
      handler: {
        take: async (records) =>
          records.map(async (record) => {
            const value = record.message.value!.toString();
            seen.set(value, (seen.get(value) ?? 0) + 1);
            await new Promise((resolve) => setTimeout(resolve, 20));
            return true;
          }),
      },
    });
    await producer.send(
      topic,
      Array.from({ length: 400 }, (_, i) => ({ key: `k${i % 17}`, value: String(i) })),
    );
    const first = await aConsumer(options());
    await eventually(() => seen.size >= 40, 'the first member busy, with records held');
    const second = await aConsumer(options());
    await eventually(() => seen.size === 400, 'every record handled', 60_000);
    await eventually(async () => {
      const committed = await committedOffsets(groupId, topic);
      const admin = kafka.admin();
      await admin.connect();
      const ends = await admin.fetchTopicOffsets(topic);
      await admin.disconnect();
      return ends.every((p) => committed[p.partition] === (p.high === '0' ? '-1' : p.high));
    }, 'everything committed to the end');
    await Promise.all([first.stop(), second.stop()]);
    // At least once: a record in flight on a partition that moved may come again; none is missing.
    expect([...seen.keys()].map(Number).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 400 }, (_, i) => i),
    );
  });

  it('loses nothing when a second member joins and takes partitions over', async () => {
    const topic = await aTopic(4);
    const producer = await aProducer();
    const groupId = uniqueName('group');
    const seen = new Set<string>();
    const options = (): Omit<ConsumerOptions, 'kafka' | 'logger' | 'onFatal'> => ({
      groupId,
      topics: [topic],
      ordering: 'key',
      producer,
      commitIntervalMs: 100,
      handler: {
        perRecord: ({ message }) => {
          seen.add(message.value!.toString());
          return { outputs: [] };
        },
      },
    });
    const send = (from: number, to: number) =>
      producer.send(
        topic,
        Array.from({ length: to - from }, (_, i) => ({
          key: `k${(from + i) % 13}`,
          value: String(from + i),
        })),
      );
    const first = await aConsumer({ ...options(), describeGroupOnJoin: true });
    await send(0, 200);
    await eventually(() => seen.size === 200, 'the first 200 records');
    // Described before its records were handed out: alone in the group.
    expect(first.membersAtJoin()).toBe(1);
    expect(first.joinedAt()).toBeGreaterThan(0);
    const second = await aConsumer({ ...options(), describeGroupOnJoin: true });
    await send(200, 400);
    await eventually(() => seen.size === 400, 'all 400 records');
    await eventually(
      () => first.membersAtJoin() === 2 && second.membersAtJoin() === 2,
      'both members see a group of two after the rebalance',
    );
    await Promise.all([first.stop(), second.stop()]);

    const committed = await committedOffsets(groupId, topic);
    const admin = kafka.admin();
    await admin.connect();
    const ends = await admin.fetchTopicOffsets(topic);
    await admin.disconnect();
    // A partition no record went to has nothing committed (-1).
    expect(committed).toEqual(
      Object.fromEntries(ends.map((p) => [p.partition, p.high === '0' ? '-1' : p.high])),
    );
  });
});
