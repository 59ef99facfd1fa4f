import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import Redis from 'ioredis';
import pino from 'pino';
import { createConsumerRunner, createReliableProducer } from '@ampflow/kafka';
import { ValidationError } from '@ampflow/runtime';
import { collectRecords, createTopics, eventually, testEndpoints, testKafka, uniqueName } from '../src';

const logger = pino({ level: 'silent' });

describe('the integration infrastructure is real', () => {
  const kafka = testKafka();

  it('kafkajs produces records that a consumer group reads back in order with keys and headers', async () => {
    const topic = uniqueName('smoke');
    await createTopics(kafka, [topic]);
    const producer = kafka.producer({ idempotent: true });
    await producer.connect();
    await producer.send({
      topic,
      acks: -1,
      messages: Array.from({ length: 20 }, (_, i) => ({
        key: 'vehicle-1',
        value: `reading-${i}`,
        headers: { provider: 'smartcar' },
      })),
    });
    await producer.disconnect();

    const collector = await collectRecords(kafka, [topic]);
    const records = await collector.waitFor(20);
    await collector.stop();
    expect(records.map((r) => r.value?.toString())).toEqual(
      Array.from({ length: 20 }, (_, i) => `reading-${i}`),
    );
    expect(new Set(records.map((r) => r.partition)).size).toBe(1);
    expect(records[0]?.headers).toEqual({ provider: 'smartcar' });
  });

  it('the consumer runner commits after handling and dead-letters a poison record while the next one flows', async () => {
    const topic = uniqueName('runner');
    const groupId = uniqueName('runner-group');
    await createTopics(kafka, [topic, `${topic}.dlq`], 1);
    const producer = createReliableProducer(kafka);
    await producer.connect();
    await producer.send(topic, [
      { key: 'k', value: 'good-1' },
      { key: 'k', value: 'poison', headers: { 'event-id': 'e-2' } },
      { key: 'k', value: 'good-2' },
    ]);

    const handled: string[] = [];
    const fatal: unknown[] = [];
    const runner = createConsumerRunner({
      kafka,
      groupId,
      topics: [topic],
      logger,
      producer,
      onFatal: (error) => {
        fatal.push(error);
      },
      handler: {
        perRecord: async ({ message }) => {
          const value = message.value?.toString() ?? '';
          if (value === 'poison') throw new ValidationError('bad_payload', 'cannot be mapped');
          handled.push(value);
          return { outputs: [] };
        },
      },
    });
    await runner.start();
    await eventually(() => handled.length === 2, 'two good records handled');

    const dlq = await collectRecords(kafka, [`${topic}.dlq`]);
    const [dead] = await dlq.waitFor(1);
    await dlq.stop();
    await runner.stop();
    await producer.disconnect();

    expect(handled).toEqual(['good-1', 'good-2']);
    expect(fatal).toEqual([]);
    expect(dead?.value?.toString()).toBe('poison');
    expect(dead?.key).toBe('k');
    expect(dead?.headers).toMatchObject({
      'event-id': 'e-2',
      'error-code': 'bad_payload',
      'error-message': 'cannot be mapped',
      'source-topic': topic,
      'source-partition': '0',
      'source-offset': '1',
    });
    expect(Date.parse(dead?.headers['failed-at'] ?? '')).not.toBeNaN();

    const admin = kafka.admin();
    await admin.connect();
    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
    await admin.disconnect();
    expect(committed?.partitions).toEqual([{ partition: 0, offset: '3', metadata: null }]);
  });

  it('registers an Avro schema in the registry and round-trips a record in Confluent wire format', async () => {
    const registry = new SchemaRegistry({ host: testEndpoints().schemaRegistryUrl });
    const subject = `${uniqueName('smoke')}-value`;
    const schema = {
      type: 'record',
      name: 'SmokeReading',
      namespace: 'dev.ampflow.smoke',
      fields: [
        { name: 'vehicleId', type: 'string' },
        { name: 'stateOfChargePercent', type: ['null', 'double'], default: null },
        { name: 'occurredAt', type: { type: 'long', logicalType: 'timestamp-millis' } },
      ],
    };
    const { id } = await registry.register(
      { type: SchemaType.AVRO, schema: JSON.stringify(schema) },
      { subject },
    );
    expect(await registry.getLatestSchemaId(subject)).toBe(id);

    const reading = { vehicleId: 'smartcar:829e30ab', stateOfChargePercent: 77.5, occurredAt: 1754365413366 };
    const encoded = await registry.encode(id, reading);
    expect(encoded.readUInt8(0)).toBe(0);
    expect(encoded.readInt32BE(1)).toBe(id);

    // A second client with an empty cache must fetch the schema by id from the registry to decode.
    const fresh = new SchemaRegistry({ host: testEndpoints().schemaRegistryUrl });
    expect(await fresh.decode(encoded)).toEqual(reading);
  });

  it('Redis answers SET and GET', async () => {
    const redis = new Redis(testEndpoints().redisUrl, { lazyConnect: true });
    await redis.connect();
    const key = uniqueName('smoke');
    expect(await redis.set(key, 'charging', 'PX', 60_000)).toBe('OK');
    expect(await redis.get(key)).toBe('charging');
    expect(await redis.pttl(key)).toBeGreaterThan(0);
    await redis.del(key);
    redis.disconnect();
  });
});
