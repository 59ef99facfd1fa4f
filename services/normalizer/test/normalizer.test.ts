import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import type { Kafka } from 'kafkajs';
import pino from 'pino';
import { canonicalSchema, Topics, type CanonicalTopic } from '@ampflow/contracts';
import { createReliableProducer } from '@ampflow/kafka';
import { createMetricsRegistry } from '@ampflow/observability';
import {
  collectRecords,
  fixtureBytes,
  fixtureJson,
  fixtureNames,
  eventually,
  lowerMaxMessageBytes,
  metricValue,
  partitionableSocketFactory,
  partitionedKafka,
  tcpProxy,
  testEndpoints,
  testKafka,
  uniqueName,
  type RecordCollector,
} from '@ampflow/testing';
import { createNormalizerApp } from '../src/app';

const logger = pino({ level: 'silent' });
const kafka = testKafka();
const GOLDEN_DIR = join(__dirname, '..', 'golden');
const stops: Array<() => Promise<void>> = [];
const collectors: RecordCollector[] = [];
afterEach(async () => {
  await Promise.all(collectors.splice(0).map((c) => c.stop()));
  for (const stop of stops.splice(0).reverse()) await stop();
});

/** What the normalizer reported as fatal (a stuck consumer); every test expects none. */
const fatalErrors: unknown[] = [];
afterEach(() => {
  expect(fatalErrors.splice(0)).toEqual([]);
});

async function startNormalizer(
  overrides: { schemaRegistryUrl?: string; kafka?: Kafka; prefix?: string } = {},
) {
  const prefix = overrides.prefix ?? uniqueName('n');
  const rawTopics = { smartcar: `${prefix}.raw.smartcar`, telematica: `${prefix}.raw.telematica` };
  const topicName = (t: CanonicalTopic) => `${prefix}.${t}`;
  const registry = createMetricsRegistry('normalizer', { defaultMetrics: false });
  const app = createNormalizerApp({
    settings: {
      httpPort: 0,
      schemaRegistryUrl: overrides.schemaRegistryUrl ?? testEndpoints().schemaRegistryUrl,
      shutdownDrainMs: 5_000,
      consumerGroupId: uniqueName('normalizer'),
      canonicalTopicPartitions: 3,
      rawTopics: [rawTopics.smartcar, rawTopics.telematica],
      canonicalTopicName: topicName,
      initialRetryMs: 100,
      maxRetryMs: 1_000,
      sessionTimeoutMs: 6_000,
    },
    kafka: overrides.kafka ?? kafka,
    logger,
    registry,
    onFatal: (error) => fatalErrors.push(error),
  });
  const started = app.start();
  stops.push(async () => {
    await started.catch(() => undefined);
    await app.stop();
  });
  if (!overrides.schemaRegistryUrl) await started;
  return { app, started, rawTopics, topicName, metrics: () => registry.metrics() };
}

async function collect(topics: string[]) {
  const c = await collectRecords(kafka, topics);
  collectors.push(c);
  return c;
}

const registry = () => new SchemaRegistry({ host: testEndpoints().schemaRegistryUrl });

describe('normalizer against the real Kafka and schema registry', () => {
  it('turns every raw provider record into its canonical Avro record, decodable through the registry', async () => {
    const n = await startNormalizer();
    const producer = createReliableProducer(kafka);
    await producer.connect();
    stops.push(() => producer.disconnect());
    const receivedAt = '2025-08-05T06:00:00.000Z';
    const names = [...fixtureNames('smartcar'), ...fixtureNames('telematica')].filter(
      (f) => !f.includes('verify'),
    );
    for (const name of names) {
      const provider = name.startsWith('smartcar') ? 'smartcar' : 'telematica';
      const body = fixtureJson<Record<string, string>>(name);
      await producer.send(provider === 'smartcar' ? n.rawTopics.smartcar : n.rawTopics.telematica, [
        {
          key: 'k',
          value: fixtureBytes(name),
          headers: {
            provider,
            'event-id': provider === 'smartcar' ? body.eventId! : 'msg_golden',
            'event-type': provider === 'smartcar' ? body.eventType! : body.type!,
            'received-at': receivedAt,
            'content-type': 'application/json',
          },
        },
      ]);
    }
    const canonicalTopics = [
      Topics.vehicleTelemetry,
      Topics.commandResults,
      Topics.deviceLinks,
      Topics.vehicleErrors,
    ];
    const c = await collect(canonicalTopics.map(n.topicName));
    const records = await c.waitFor(names.length);
    const decoder = registry();
    const decoded = await Promise.all(
      records.map(async (r) => ({ topic: r.topic, key: r.key, value: await decoder.decode(r.value!) })),
    );
    for (const name of names) {
      const golden = JSON.parse(readFileSync(join(GOLDEN_DIR, name), 'utf8')) as {
        topic: string;
        key: string;
        value: { eventId: string };
      };
      const match = decoded.find(
        (d) =>
          d.topic === n.topicName(golden.topic as CanonicalTopic) &&
          JSON.stringify(d.value) === JSON.stringify(golden.value),
      );
      expect({ name, found: Boolean(match), key: match?.key }).toEqual({
        name,
        found: true,
        key: golden.key,
      });
    }
    expect(records[0]?.value?.readUInt8(0)).toBe(0);
    const metrics = await n.metrics();
    expect(
      metricValue(metrics, 'normalizer_records_in_total', {
        provider: 'smartcar',
        event_type: 'VEHICLE_STATE',
      }),
    ).toBe(3);
    expect(
      metricValue(metrics, 'normalizer_skipped_signals_total', { provider: 'smartcar', reason: 'failed' }),
    ).toBe(1);
    expect(
      metricValue(metrics, 'normalizer_skipped_signals_total', {
        provider: 'smartcar',
        reason: 'unknown_code',
      }),
    ).toBe(1);
    await eventually(
      async () =>
        metricValue(await n.metrics(), 'normalizer_records_out_total', {
          topic: n.topicName(Topics.vehicleTelemetry),
        }) === 6,
      'six telemetry records counted out',
    );
  });

  it('dead-letters a poison record with the reason and its source position while the next good record flows', async () => {
    const n = await startNormalizer();
    const producer = createReliableProducer(kafka);
    await producer.connect();
    stops.push(() => producer.disconnect());
    const headers = (eventId: string) => ({
      provider: 'telematica',
      'event-id': eventId,
      'event-type': 'vehicle.soc',
      'received-at': new Date().toISOString(),
    });
    await producer.send(n.rawTopics.telematica, [
      { key: 'v1', value: Buffer.from('{"type":"vehicle.soc",'), headers: headers('msg_poison') },
      {
        key: 'v1',
        value: Buffer.from('{"type":"vehicle.soc","vehicleId":"v1"}'),
        headers: headers('msg_schema'),
      },
      { key: 'v1', value: fixtureBytes('telematica/vehicle-soc.json'), headers: headers('msg_good') },
    ]);
    const dlq = await collect([`${n.rawTopics.telematica}.dlq`]);
    const out = await collect([n.topicName(Topics.vehicleTelemetry)]);
    const [good] = await out.waitFor(1);
    const dead = await dlq.waitFor(2);
    expect((await registry().decode(good!.value!)).eventId).toBe('telematica:msg_good');
    expect(dead.map((d) => d.headers)).toEqual([
      expect.objectContaining({
        'event-id': 'msg_poison',
        'error-code': 'bad_json',
        'source-topic': n.rawTopics.telematica,
        'source-offset': '0',
      }),
      expect.objectContaining({
        'event-id': 'msg_schema',
        'error-code': 'schema_mismatch',
        'source-offset': '1',
      }),
    ]);
    expect(dead[0]?.value?.toString()).toBe('{"type":"vehicle.soc",');
    expect(dead[0]?.key).toBe('v1');
    for (const d of dead) {
      expect(d.headers['source-partition']).toMatch(/^\d+$/);
      expect(Date.parse(d.headers['failed-at'] ?? '')).not.toBeNaN();
      expect(d.headers['error-message']).toBeTruthy();
    }
    expect(metricValue(await n.metrics(), 'normalizer_dead_letters_total', { reason: 'bad_json' })).toBe(1);
  });

  it('dead-letters a raw record whose canonical record is too large for its topic; the records around it flow', async () => {
    // The telemetry topic takes 4 KiB records; an event id of 3,000 characters (in the record and its header)
    // makes the canonical record of one raw record larger than that.
    const n = await startNormalizer();
    await lowerMaxMessageBytes(kafka, n.topicName(Topics.vehicleTelemetry), 4 * 1024);
    const producer = createReliableProducer(kafka);
    await producer.connect();
    stops.push(() => producer.disconnect());
    const raw = (eventId: string) => ({
      key: 'v1',
      value: fixtureBytes('telematica/vehicle-soc.json'),
      headers: {
        provider: 'telematica',
        'event-id': eventId,
        'event-type': 'vehicle.soc',
        'received-at': new Date().toISOString(),
      },
    });
    const huge = `msg_${'x'.repeat(3_000)}`;
    await producer.send(n.rawTopics.telematica, [raw('msg_before'), raw(huge), raw('msg_after')]);

    const dlq = await collect([`${n.rawTopics.telematica}.dlq`]);
    const out = await collect([n.topicName(Topics.vehicleTelemetry)]);
    const [dead] = await dlq.waitFor(1);
    const good = await out.waitFor(2);
    expect(dead?.headers).toMatchObject({
      'event-id': huge,
      'error-code': 'record_too_large',
      'source-topic': n.rawTopics.telematica,
      'source-offset': '1',
    });
    expect(dead?.headers['error-message']).toContain(n.topicName(Topics.vehicleTelemetry));
    expect(dead?.value).toEqual(fixtureBytes('telematica/vehicle-soc.json'));
    const decoder = registry();
    const ids = await Promise.all(good.map(async (r) => (await decoder.decode(r.value!)).eventId));
    expect(new Set(ids)).toEqual(new Set(['telematica:msg_before', 'telematica:msg_after']));
    await eventually(
      async () =>
        metricValue(await n.metrics(), 'normalizer_dead_letters_total', { reason: 'record_too_large' }) === 1,
      'the dead letter counted with its reason',
    );
  });

  it('registers each canonical subject with BACKWARD compatibility, and the registry refuses a breaking change', async () => {
    const n = await startNormalizer();
    expect(n.app.isReady()).toBe(true);
    const subject = `${n.topicName(Topics.vehicleTelemetry)}-value`;
    const config = await (await fetch(`${testEndpoints().schemaRegistryUrl}/config/${subject}`)).json();
    expect(config).toEqual({ compatibilityLevel: 'BACKWARD' });
    const schema = JSON.parse(canonicalSchema(Topics.vehicleTelemetry));
    // A new field without a default: readers of the new schema cannot read old records.
    schema.fields.push({ name: 'tyrePressureKpa', type: 'double' });
    await expect(
      registry().register({ type: SchemaType.AVRO, schema: JSON.stringify(schema) }, { subject }),
    ).rejects.toMatchObject({ status: 409 });
    // The same change as an optional field with a default is accepted.
    schema.fields[schema.fields.length - 1] = {
      name: 'tyrePressureKpa',
      type: ['null', 'double'],
      default: null,
    };
    await expect(
      registry().register({ type: SchemaType.AVRO, schema: JSON.stringify(schema) }, { subject }),
    ).resolves.toHaveProperty('id');
  });

  it('waits for the schema registry while it is away: not ready, then registers and flows once it is back', async () => {
    const target = new URL(testEndpoints().schemaRegistryUrl);
    const proxy = await tcpProxy(target.hostname, Number(target.port));
    stops.push(() => proxy.stop());
    const url = `http://127.0.0.1:${proxy.port}${target.pathname}`;
    const n = await startNormalizer({ schemaRegistryUrl: url });
    await new Promise((r) => setTimeout(r, 1_000));
    expect(n.app.isReady()).toBe(false);
    await proxy.start();
    await n.started;
    await eventually(() => n.app.isReady(), 'ready after the registry came back');
  });

  it('retries while Kafka is unreachable and, once it is back, produces every record without dead-lettering any', async () => {
    const partition = partitionableSocketFactory();
    const partitioned = partitionedKafka(partition);
    const n = await startNormalizer({ kafka: partitioned });
    await eventually(() => n.app.isReady(), 'ready');
    partition.cut();
    const producer = createReliableProducer(kafka);
    await producer.connect();
    stops.push(() => producer.disconnect());
    const ids = Array.from({ length: 20 }, (_, i) => `msg_outage_${i}`);
    await producer.send(
      n.rawTopics.telematica,
      ids.map((id) => ({
        key: 'v1',
        value: fixtureBytes('telematica/vehicle-soc.json'),
        headers: {
          provider: 'telematica',
          'event-id': id,
          'event-type': 'vehicle.soc',
          'received-at': new Date().toISOString(),
        },
      })),
    );
    await new Promise((r) => setTimeout(r, 2_000));
    partition.heal();
    const out = await collect([n.topicName(Topics.vehicleTelemetry)]);
    const records = await out.waitFor(20, 45_000);
    const decoder = registry();
    const eventIds = new Set(
      await Promise.all(records.map(async (r) => (await decoder.decode(r.value!)).eventId)),
    );
    expect([...eventIds].sort()).toEqual(ids.map((id) => `telematica:${id}`).sort());
    expect(metricValue(await n.metrics(), 'normalizer_dead_letters_total')).toBeUndefined();
  });
});
