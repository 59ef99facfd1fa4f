import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import Redis from 'ioredis';
import pino from 'pino';
import { Topics, canonicalSchema, emptyTelemetry } from '@ampflow/contracts';
import { createReliableProducer, ensureTopics } from '@ampflow/kafka';
import { createMetricsRegistry } from '@ampflow/observability';
import {
  eventually,
  metricValue,
  startRedisProcess,
  testEndpoints,
  testKafka,
  uniqueName,
} from '@ampflow/testing';
import { createAggregatorApp } from '../src/app';
import { DEFAULT_REDUCER_SETTINGS } from '../src/session-reducer';

/**
 * The two series the alerts AggregatorConsumerLagHigh and AggregatorRedisErrors read
 * (deploy/prometheus/alerts.yml): the consumer lag per telemetry partition, and failed Redis calls, with a Redis
 * of the test's own that it kills.
 */

const logger = pino({ level: 'silent' });
const kafka = testKafka();
const registry = new SchemaRegistry({ host: testEndpoints().schemaRegistryUrl });
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

it('exports its consumer lag per telemetry partition and counts failed Redis calls', async () => {
  const redis = await startRedisProcess();
  cleanups.push(() => redis.stop());
  const telemetryTopic = uniqueName('lag.telemetry');
  await ensureTopics(kafka, [{ topic: telemetryTopic, numPartitions: 1 }]);
  const { id } = await registry.register(
    { type: SchemaType.AVRO, schema: canonicalSchema(Topics.vehicleTelemetry) },
    { subject: `${telemetryTopic}-value` },
  );
  const producer = createReliableProducer(kafka);
  await producer.connect();
  cleanups.push(() => producer.disconnect());
  const start = Date.parse('2025-08-05T00:00:00.000Z');
  let sequence = 0;
  const publishReading = async (vehicle = 'lag-vehicle') => {
    sequence += 1;
    const reading = emptyTelemetry({
      eventId: `smartcar:lag-${sequence}`,
      provider: 'smartcar',
      vehicleId: `smartcar:${vehicle}`,
      providerVehicleId: vehicle,
      userId: null,
      occurredAt: start + sequence * 60_000,
      receivedAt: start + sequence * 60_000 + 1_000,
      sourceEventType: 'VEHICLE_STATE',
    });
    await producer.send(telemetryTopic, [
      { key: reading.vehicleId, value: await registry.encode(id, reading) },
    ]);
  };

  const metrics = createMetricsRegistry('session-aggregator', { defaultMetrics: false });
  const app = createAggregatorApp({
    settings: {
      ...DEFAULT_REDUCER_SETTINGS,
      httpPort: 0,
      schemaRegistryUrl: testEndpoints().schemaRegistryUrl,
      shutdownDrainMs: 2_000,
      consumerGroupId: uniqueName('lag'),
      sessionsTopicPartitions: 1,
      sweepIntervalMs: 3_600_000,
      stateTtlSeconds: 3_600,
      redisNamespace: uniqueName('sessions'),
      initialRetryMs: 100,
      maxRetryMs: 500,
      sessionTimeoutMs: 6_000,
      telemetryTopic,
      sessionsTopic: uniqueName('lag.sessions'),
      changelogTopic: uniqueName('lag.changelog'),
    },
    kafka,
    // One retry per command, so that a call fails within a second of Redis going away.
    redis: new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 }),
    logger,
    registry: metrics,
    onFatal: () => undefined,
    now: () => start + sequence * 60_000 + 2_000,
  });
  await app.start();
  cleanups.push(() => app.stop());
  const value = async (name: string, labels: Record<string, string>) =>
    metricValue(await metrics.metrics(), name, labels);

  await publishReading();
  await eventually(
    async () => (await value('session_aggregator_readings_total', { outcome: 'applied' })) === 1,
    'the reading applied',
    30_000,
    100,
  );
  await eventually(
    async () =>
      (await value('session_aggregator_consumer_lag', { topic: telemetryTopic, partition: '0' })) === 0,
    'the lag of partition 0 exported',
    10_000,
    100,
  );
  expect(await value('session_aggregator_redis_errors_total', {})).toBeUndefined();

  await redis.kill();
  // Another vehicle: the first one's state is in the instance's cache, so its next reading would need no load.
  await publishReading('lag-vehicle-2');
  await eventually(
    async () =>
      ((await value('session_aggregator_redis_errors_total', { operation: 'connection' })) ?? 0) > 0,
    'the lost connection counted',
    30_000,
    100,
  );
  await eventually(
    async () => ((await value('session_aggregator_redis_errors_total', { operation: 'load' })) ?? 0) > 0,
    'the failed chunk load counted',
    30_000,
    100,
  );
  // Back, so that the app stops cleanly.
  await redis.restart();
});
