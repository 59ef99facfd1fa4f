import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import Redis from 'ioredis';
import pino from 'pino';
import {
  Topics,
  canonicalSchema,
  emptyTelemetry,
  type ChargingSession,
  type VehicleTelemetry,
} from '@ampflow/contracts';
import { createReliableProducer, ensureTopics } from '@ampflow/kafka';
import { createMetricsRegistry } from '@ampflow/observability';
import {
  collectRecords,
  eventually,
  metricValue,
  testEndpoints,
  testKafka,
  uniqueName,
  type RecordCollector,
} from '@ampflow/testing';
import { createAggregatorApp } from '../src/app';
import { DEFAULT_REDUCER_SETTINGS } from '../src/session-reducer';

const logger = pino({ level: 'silent' });
const kafka = testKafka();
const registry = () => new SchemaRegistry({ host: testEndpoints().schemaRegistryUrl });
const fatalErrors: unknown[] = [];
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  expect(fatalErrors.splice(0)).toEqual([]);
});

const DAY = Date.parse('2025-08-05T00:00:00.000Z');
const H = 3600_000;

function charging(vehicleId: string, eventId: string, occurredAt: number): VehicleTelemetry {
  return {
    ...emptyTelemetry({
      eventId,
      provider: 'smartcar',
      vehicleId,
      providerVehicleId: vehicleId.split(':')[1]!,
      userId: null,
      occurredAt,
      receivedAt: Math.round(occurredAt) + 1000,
      sourceEventType: 'VEHICLE_STATE',
    }),
    isCharging: true,
    isPluggedIn: true,
    stateOfChargePercent: 40,
  };
}

/**
 * The telemetry schema as a careless producer might evolve it: `occurredAt` a plain double (a BACKWARD-compatible
 * promotion of the long). Its records decode fine, but a reading at a fractional millisecond gives a session whose
 * `startedAt` no Avro long holds, so the session change cannot be encoded.
 */
function telemetrySchemaWithDoubleTimes(): string {
  const schema = JSON.parse(canonicalSchema(Topics.vehicleTelemetry)) as {
    fields: Array<{ name: string; type: unknown }>;
  };
  for (const field of schema.fields) if (field.name === 'occurredAt') field.type = 'double';
  return JSON.stringify(schema);
}

async function collect(topic: string): Promise<RecordCollector> {
  const c = await collectRecords(kafka, [topic]);
  cleanups.push(() => c.stop());
  return c;
}

describe('session aggregator and records it can never handle', () => {
  it('dead-letters a reading whose session change cannot be encoded, and an unreadable record, and keeps going', async () => {
    const telemetryTopic = uniqueName('agg.poison.telemetry');
    const sessionsTopic = uniqueName('agg.poison.sessions');
    await ensureTopics(kafka, [{ topic: telemetryTopic, numPartitions: 1 }]);
    const reg = registry();
    const subject = `${telemetryTopic}-value`;
    const { id: canonicalId } = await reg.register(
      { type: SchemaType.AVRO, schema: canonicalSchema(Topics.vehicleTelemetry) },
      { subject },
    );
    const { id: doubleTimesId } = await reg.register(
      { type: SchemaType.AVRO, schema: telemetrySchemaWithDoubleTimes() },
      { subject },
    );
    expect(doubleTimesId).not.toBe(canonicalId);

    const vehicleId = `smartcar:${uniqueName('poison')}`;
    const producer = createReliableProducer(kafka);
    await producer.connect();
    cleanups.push(() => producer.disconnect());
    await producer.send(telemetryTopic, [
      {
        key: vehicleId,
        value: await reg.encode(doubleTimesId, charging(vehicleId, 'smartcar:poison-1', DAY + 8 * H + 0.5)),
        headers: { 'event-id': 'smartcar:poison-1' },
      },
      { key: vehicleId, value: Buffer.from('{"not":"avro"}'), headers: { 'event-id': 'smartcar:json-1' } },
      {
        key: vehicleId,
        value: await reg.encode(canonicalId, charging(vehicleId, 'smartcar:good-1', DAY + 9 * H)),
      },
    ]);

    const metrics = createMetricsRegistry('session-aggregator', { defaultMetrics: false });
    const app = createAggregatorApp({
      settings: {
        ...DEFAULT_REDUCER_SETTINGS,
        httpPort: 0,
        schemaRegistryUrl: testEndpoints().schemaRegistryUrl,
        shutdownDrainMs: 5_000,
        consumerGroupId: uniqueName('agg-poison'),
        sessionsTopicPartitions: 1,
        sweepIntervalMs: 3_600_000,
        stateTtlSeconds: 3_600,
        redisNamespace: uniqueName('sessions'),
        changelogTopic: uniqueName('agg.poison.changelog'),
        telemetryTopic,
        sessionsTopic,
        initialRetryMs: 100,
        maxRetryMs: 1_000,
        sessionTimeoutMs: 6_000,
        // Any stall would report as fatal well within the test.
        stuckExitMs: 20_000,
      },
      kafka,
      redis: new Redis(testEndpoints().redisUrl, { lazyConnect: true, enableAutoPipelining: true }),
      logger,
      registry: metrics,
      onFatal: (error) => fatalErrors.push(error),
    });
    await app.start();
    cleanups.push(() => app.stop());

    const dlq = await collect(`${telemetryTopic}.dlq`);
    const sessions = await collect(sessionsTopic);
    const dead = await dlq.waitFor(2);
    const [started] = await sessions.waitFor(1);

    expect(dead.map((d) => [d.headers['source-offset'], d.headers['error-code']])).toEqual([
      ['0', 'encode_failed'],
      ['1', 'bad_avro'],
    ]);
    expect(dead[0]?.headers).toMatchObject({
      'event-id': 'smartcar:poison-1',
      'source-topic': telemetryTopic,
    });
    expect(dead[0]?.headers['error-message']).toContain('startedAt');
    expect(dead[0]?.key).toBe(vehicleId);
    expect(dead[1]?.value?.toString()).toBe('{"not":"avro"}');

    // The next reading of the same vehicle starts its session as if the poison had never come.
    const session = (await reg.decode(started!.value!)) as ChargingSession;
    expect(session).toMatchObject({ vehicleId, change: 'STARTED', startedAt: DAY + 9 * H, eventCount: 1 });
    // Counted once the chunk is done (its changelog and Redis writes follow the sessions' acknowledgement).
    const counted = async (reason: string) =>
      metricValue(await metrics.metrics(), 'session_aggregator_dead_letters_total', { reason });
    await eventually(
      async () => (await counted('bad_avro')) !== undefined && (await counted('encode_failed')) !== undefined,
      'both dead letters counted',
    );
    expect(await counted('encode_failed')).toBe(1);
    expect(await counted('bad_avro')).toBe(1);
  });
});
