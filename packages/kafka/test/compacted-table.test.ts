import pino from 'pino';
import { ConfigResourceTypes, type Kafka } from 'kafkajs';
import {
  createCompactedTable,
  createReliableProducer,
  type CompactedTable,
  type CompactedTableOptions,
  type ReliableProducer,
} from '@ampflow/kafka';
import { AppError } from '@ampflow/runtime';
import {
  eventually,
  partitionableSocketFactory,
  partitionedKafka,
  testKafka,
  uniqueName,
} from '@ampflow/testing';

/**
 * The compacted table against the real broker: what the notifier's endpoint store relies on. Every table has
 * its own producer, as each service instance would.
 */
jest.setTimeout(120_000);

const logger = pino({ level: process.env.AMPFLOW_TEST_LOG ?? 'silent' });

interface Endpoint {
  url: string;
  version: number;
}

const codec = {
  encode: (value: Endpoint) => Buffer.from(JSON.stringify(value)),
  decode: (buf: Buffer): Endpoint => {
    const parsed = JSON.parse(buf.toString()) as Partial<Endpoint>;
    if (typeof parsed.url !== 'string' || typeof parsed.version !== 'number')
      throw new Error('not an endpoint');
    return { url: parsed.url, version: parsed.version };
  },
};

const anEndpoint = (version: number, url = `https://hooks.example.test/${version}`): Endpoint => ({
  url,
  version,
});

/** Tables and producers made by a test, stopped after it whatever happened. */
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

async function aTable(
  kafka: Kafka,
  topic: string,
  overrides: Partial<CompactedTableOptions<Endpoint>> = {},
): Promise<CompactedTable<Endpoint>> {
  const table = createCompactedTable<Endpoint>({
    kafka,
    topic,
    logger,
    ...codec,
    producer: overrides.producer ?? (await aProducer(kafka)),
    onFatal: (error) => fatal.push(error),
    ...overrides,
  });
  await table.start();
  cleanups.push(() => table.stop());
  return table;
}

async function caughtUp(table: CompactedTable<Endpoint>): Promise<void> {
  await eventually(() => table.caughtUp(), 'the table to catch up');
}

const contents = (table: CompactedTable<Endpoint>) => Object.fromEntries(table.entries());

describe('compacted table', () => {
  it('creates its topic compacted, with one partition by default', async () => {
    const kafka = testKafka();
    const topic = uniqueName('table-config');
    await aTable(kafka, topic);
    const admin = kafka.admin();
    await admin.connect();
    try {
      const { resources } = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['cleanup.policy'] }],
      });
      expect(resources[0]?.configEntries[0]?.configValue).toBe('compact');
      const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
      expect(metadata.topics[0]?.partitions).toHaveLength(1);
    } finally {
      await admin.disconnect();
    }
  });

  it('makes a topic that exists without compaction compacted before reading it', async () => {
    const kafka = testKafka();
    const topic = uniqueName('table-not-compacted');
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1 }] });
      const table = createCompactedTable<Endpoint>({
        kafka,
        topic,
        logger,
        ...codec,
        producer: await aProducer(kafka),
        onFatal: (error) => fatal.push(error),
      });
      cleanups.push(() => table.stop());
      await table.start();
      const { resources } = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['cleanup.policy'] }],
      });
      expect(resources[0]?.configEntries[0]?.configValue).toBe('compact');
    } finally {
      await admin.disconnect();
    }
  });

  it('refuses a topic its configs leave without compaction', async () => {
    const kafka = testKafka();
    const table = createCompactedTable<Endpoint>({
      kafka,
      topic: uniqueName('table-delete-policy'),
      topicConfig: [{ name: 'cleanup.policy', value: 'delete' }],
      logger,
      ...codec,
      producer: await aProducer(kafka),
      onFatal: (error) => fatal.push(error),
    });
    cleanups.push(() => table.stop());
    await expect(table.start()).rejects.toMatchObject({
      code: 'table_topic_not_compacted',
      retriable: false,
    });
  });

  it('leaves no reader and no group behind when stopped while starting', async () => {
    const kafka = testKafka();
    const topic = uniqueName('table-stop-early');
    const table = createCompactedTable<Endpoint>({
      kafka,
      topic,
      logger,
      ...codec,
      producer: await aProducer(kafka),
      onFatal: (error) => fatal.push(error),
    });
    const started = table.start();
    await table.stop();
    await started;
    await expect(table.put('ep-1', anEndpoint(1))).rejects.toMatchObject({ code: 'table_not_running' });
    const admin = kafka.admin();
    await admin.connect();
    try {
      const { groups } = await admin.listGroups();
      expect(groups.filter((g) => g.groupId.startsWith(`${topic}-reader-`))).toEqual([]);
    } finally {
      await admin.disconnect();
    }
  });

  it('is caught up at once on an empty topic', async () => {
    const table = await aTable(testKafka(), uniqueName('table-empty'));
    expect(table.caughtUp()).toBe(true);
    expect(table.size).toBe(0);
  });

  it('is not caught up until it has read what the topic held at start, and is after', async () => {
    const kafka = testKafka();
    const topic = uniqueName('table-catch-up');
    const writer = await aTable(kafka, topic);
    const producer = await aProducer(kafka);
    // Written behind the writer table's back, so that the reader has many batches to get through.
    const records = Array.from({ length: 3_000 }, (_, i) => ({
      key: `ep-${i % 1_000}`,
      value: codec.encode(anEndpoint(i)),
    }));
    await producer.send(topic, records);
    await eventually(() => writer.get('ep-999')?.version === 2_999, 'the writer to read the batch');

    const reader = await aTable(kafka, topic);
    const sizes: number[] = [];
    // Not one fetch has been answered yet: start resolves once the reader joined its group.
    expect(reader.caughtUp()).toBe(false);
    await eventually(() => {
      sizes.push(reader.size);
      return reader.caughtUp();
    }, 'the reader to catch up');
    expect(reader.size).toBe(1_000);
    expect(reader.get('ep-0')).toEqual(anEndpoint(2_000));
    expect(contents(reader)).toEqual(contents(writer));
    expect(sizes[0]).toBeLessThan(1_000);
  });

  it('works over several partitions: read-your-writes per key, catch-up over all of them', async () => {
    const kafka = testKafka();
    const topic = uniqueName('table-partitions');
    const a = await aTable(kafka, topic, { partitions: 3 });
    await Promise.all(
      Array.from({ length: 30 }, async (_, i) => {
        await a.put(`ep-${i}`, anEndpoint(i));
        expect(a.get(`ep-${i}`)).toEqual(anEndpoint(i));
      }),
    );
    await a.delete('ep-0');
    const b = await aTable(kafka, topic);
    await caughtUp(b);
    expect(b.size).toBe(29);
    expect(contents(b)).toEqual(contents(a));
  });

  it('reads its own writes at once and sees those of another instance', async () => {
    const kafka = testKafka();
    const topic = uniqueName('table-two');
    const a = await aTable(kafka, topic);
    const b = await aTable(kafka, topic);
    await Promise.all([caughtUp(a), caughtUp(b)]);

    for (let version = 1; version <= 20; version++) {
      await a.put('ep-1', anEndpoint(version));
      // No waiting: put resolves only after a's own reader applied the record.
      expect(a.get('ep-1')).toEqual(anEndpoint(version));
    }
    await eventually(() => b.get('ep-1')?.version === 20, 'b to see a’s last write');

    await b.put('ep-2', anEndpoint(7));
    expect(b.get('ep-2')).toEqual(anEndpoint(7));
    await eventually(() => a.get('ep-2')?.version === 7, 'a to see b’s write');

    await Promise.all([a.put('ep-3', anEndpoint(1)), b.put('ep-3', anEndpoint(2))]);
    // Concurrent writes of one key: both instances end on the same one, the later in the topic.
    await eventually(
      () => a.get('ep-3') !== undefined && a.get('ep-3')?.version === b.get('ep-3')?.version,
      'both to agree on ep-3',
    );
  });

  it('removes a key on delete (a tombstone), here at once and elsewhere soon after', async () => {
    const kafka = testKafka();
    const topic = uniqueName('table-delete');
    const a = await aTable(kafka, topic);
    const b = await aTable(kafka, topic);
    const changes: Array<{ key: string; version: number | undefined }> = [];
    b.onChange(({ key, value }) => changes.push({ key, version: value?.version }));

    await a.put('ep-1', anEndpoint(1));
    await a.put('ep-2', anEndpoint(1));
    await a.delete('ep-1');
    expect(a.get('ep-1')).toBeUndefined();
    expect(a.size).toBe(1);
    await eventually(() => changes.length === 3, 'b to see three changes');
    expect(b.get('ep-1')).toBeUndefined();
    expect(changes).toEqual([
      { key: 'ep-1', version: 1 },
      { key: 'ep-2', version: 1 },
      { key: 'ep-1', version: undefined },
    ]);

    // A tombstone for a key nobody holds changes nothing and tells no listener.
    await a.delete('ep-never');
    await a.put('ep-3', anEndpoint(1));
    await eventually(() => b.get('ep-3') !== undefined, 'b to see ep-3');
    expect(changes.map((c) => c.key)).toEqual(['ep-1', 'ep-2', 'ep-1', 'ep-3']);
  });

  it('rebuilds the same map after a restart, skipping records it cannot decode', async () => {
    const kafka = testKafka();
    const topic = uniqueName('table-restart');
    const first = await aTable(kafka, topic);
    await first.put('ep-1', anEndpoint(1));
    await first.put('ep-2', anEndpoint(1));
    await first.put('ep-1', anEndpoint(2));
    // Someone else's bad record in the middle of the log: skipped, not fatal, and the key keeps its value.
    await (await aProducer(kafka)).send(topic, [{ key: 'ep-2', value: 'not json' }]);
    await first.put('ep-3', anEndpoint(1));
    await first.delete('ep-2');
    await first.put('ep-4', anEndpoint(1));
    expect(first.skippedRecords).toBe(1);
    const before = contents(first);
    expect(before).toEqual({ 'ep-1': anEndpoint(2), 'ep-3': anEndpoint(1), 'ep-4': anEndpoint(1) });
    await first.stop();

    const admin = kafka.admin();
    await admin.connect();
    try {
      // stop deleted the throwaway reader group.
      const { groups } = await admin.listGroups();
      expect(groups.filter((g) => g.groupId.startsWith(`${topic}-reader-`))).toEqual([]);
    } finally {
      await admin.disconnect();
    }

    const second = await aTable(kafka, topic);
    await caughtUp(second);
    expect(contents(second)).toEqual(before);
    expect(second.skippedRecords).toBe(1);
  });

  it('rejects a put with a retriable error while the broker is unreachable, and applies it nowhere', async () => {
    const topic = uniqueName('table-partition');
    const partition = partitionableSocketFactory();
    const cutOff = partitionedKafka(partition);
    const writer = await aTable(cutOff, topic, { writeTimeoutMs: 3_000 });
    const observer = await aTable(testKafka(), topic);
    await writer.put('ep-1', anEndpoint(1));
    await eventually(() => observer.get('ep-1')?.version === 1, 'the observer to see the first write');

    partition.cut();
    const started = Date.now();
    const error: unknown = await writer.put('ep-1', anEndpoint(2)).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({ retriable: true });
    expect(Date.now() - started).toBeLessThan(10_000);
    // Nothing half-applied: the writer did not take its own write before the topic had it.
    expect(writer.get('ep-1')).toEqual(anEndpoint(1));
    expect(observer.get('ep-1')).toEqual(anEndpoint(1));

    partition.heal();
    // The write's outcome was unknown: the producer may still deliver it. Whatever happens, every instance
    // ends with the same value, and writes work again.
    await eventually(
      async () => {
        try {
          await writer.put('ep-2', anEndpoint(1));
          return true;
        } catch {
          return false;
        }
      },
      'a put to succeed after the partition healed',
      60_000,
      500,
    );
    await eventually(() => observer.get('ep-2') !== undefined, 'the observer to see the write after healing');
    expect(writer.get('ep-1')).toEqual(observer.get('ep-1'));
    expect(contents(writer)).toEqual(contents(observer));
  });

  it('times out a put its own reader cannot read back, and applies it only once read', async () => {
    const topic = uniqueName('table-reader-cut');
    const partition = partitionableSocketFactory();
    // The broker takes the write (the producer's client is not cut); only the writer's reader is partitioned.
    const writer = await aTable(partitionedKafka(partition), topic, {
      writeTimeoutMs: 3_000,
      producer: await aProducer(testKafka()),
    });
    const observer = await aTable(testKafka(), topic);
    await writer.put('ep-1', anEndpoint(1));

    partition.cut();
    const started = Date.now();
    await expect(writer.put('ep-1', anEndpoint(2))).rejects.toMatchObject({
      code: 'table_write_timeout',
      retriable: true,
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_900);
    // The topic has the write and other instances apply it; the writer does not until its reader reads it.
    await eventually(() => observer.get('ep-1')?.version === 2, 'the observer to apply the write');
    expect(writer.get('ep-1')).toEqual(anEndpoint(1));

    partition.heal();
    // kafkajs restarted the cut-off reader; its new member joins once the old one's 6 s session expires.
    await eventually(
      () => writer.get('ep-1')?.version === 2,
      'the writer to read its write after healing',
      20_000,
    );
    await writer.put('ep-2', anEndpoint(1));
    expect(contents(writer)).toEqual({ 'ep-1': anEndpoint(2), 'ep-2': anEndpoint(1) });
  });
});
