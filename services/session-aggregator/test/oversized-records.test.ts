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
import { createReliableProducer } from '@ampflow/kafka';
import { createMetricsRegistry } from '@ampflow/observability';
import {
  collectRecords,
  eventually,
  lowerMaxMessageBytes,
  metricValue,
  testEndpoints,
  testKafka,
  uniqueName,
  type RecordCollector,
} from '@ampflow/testing';
import { createAggregatorApp } from '../src/app';
import { DEFAULT_REDUCER_SETTINGS } from '../src/session-reducer';

/**
 * Readings whose outputs Kafka would refuse for good: a session change over the sessions topic's
 * `max.message.bytes`, and a vehicle state over the changelog's. The test lowers both topics' limits once the
 * service started; neither reading may stop the partition (retried until the service gives up and is restarted
 * onto it).
 */
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

function charging(vehicleId: string, eventId: string, hour: number): VehicleTelemetry {
  return {
    ...emptyTelemetry({
      eventId,
      provider: 'smartcar',
      vehicleId,
      providerVehicleId: vehicleId.split(':')[1]!,
      userId: null,
      occurredAt: DAY + hour * H,
      receivedAt: DAY + hour * H + 1000,
      sourceEventType: 'VEHICLE_STATE',
    }),
    isCharging: true,
    isPluggedIn: true,
    stateOfChargePercent: 40,
  };
}

async function collect(topic: string): Promise<RecordCollector> {
  const c = await collectRecords(kafka, [topic]);
  cleanups.push(() => c.stop());
  return c;
}

describe('session aggregator and outputs too large for their topics', () => {
  it('dead-letters a reading whose session change or whose state Kafka would refuse, and keeps going', async () => {
    const telemetryTopic = uniqueName('agg.large.telemetry');
    const sessionsTopic = uniqueName('agg.large.sessions');
    const changelogTopic = uniqueName('agg.large.changelog');
    const reg = registry();
    const { id: schemaId } = await reg.register(
      { type: SchemaType.AVRO, schema: canonicalSchema(Topics.vehicleTelemetry) },
      { subject: `${telemetryTopic}-value` },
    );

    const tag = uniqueName('v');
    const ok = `smartcar:${tag}-ok`;
    // A 3,000-character vehicle id: its session change (key and value) exceeds 4 KiB, its state fits 16 KiB.
    const longId = `smartcar:${tag}-${'l'.repeat(3_000)}`;
    // A 20,000-character user id on a reading that changes no session: kept in the vehicle's state, in no
    // session change. (A long event id no longer makes a large state: only its fingerprint is kept.)
    const bloated = `smartcar:${tag}-bloated`;
    const readings = [
      charging(ok, `smartcar:${tag}-ok-1`, 8),
      charging(longId, `smartcar:${tag}-long-1`, 8),
      {
        ...charging(bloated, `smartcar:${tag}-bloated-1`, 8),
        isCharging: false,
        userId: `smartcar:${'u'.repeat(20_000)}`,
      },
      charging(bloated, `smartcar:${tag}-bloated-2`, 9),
      { ...charging(ok, `smartcar:${tag}-ok-2`, 10), isCharging: false },
    ];
    const metrics = createMetricsRegistry('session-aggregator', { defaultMetrics: false });
    const app = createAggregatorApp({
      settings: {
        ...DEFAULT_REDUCER_SETTINGS,
        httpPort: 0,
        schemaRegistryUrl: testEndpoints().schemaRegistryUrl,
        shutdownDrainMs: 5_000,
        consumerGroupId: uniqueName('agg-large'),
        sessionsTopicPartitions: 1,
        sweepIntervalMs: 3_600_000,
        stateTtlSeconds: 3_600,
        redisNamespace: uniqueName('sessions'),
        changelogTopic,
        telemetryTopic,
        sessionsTopic,
        initialRetryMs: 100,
        maxRetryMs: 1_000,
        sessionTimeoutMs: 6_000,
        // A chunk retried instead of dead-lettered would report as fatal well within the test.
        stuckExitMs: 15_000,
      },
      kafka,
      redis: new Redis(testEndpoints().redisUrl, { lazyConnect: true, enableAutoPipelining: true }),
      logger,
      registry: metrics,
      onFatal: (error) => fatalErrors.push(error),
    });
    await app.start();
    cleanups.push(() => app.stop());
    // After the start, which creates (or corrects) the topics with their configured limits.
    await lowerMaxMessageBytes(kafka, sessionsTopic, 4 * 1024);
    await lowerMaxMessageBytes(kafka, changelogTopic, 16 * 1024);
    const producer = createReliableProducer(kafka);
    await producer.connect();
    cleanups.push(() => producer.disconnect());
    await producer.send(
      telemetryTopic,
      await Promise.all(
        readings.map(async (r) => ({ key: r.vehicleId, value: await reg.encode(schemaId, r) })),
      ),
    );

    const dlq = await collect(`${telemetryTopic}.dlq`);
    const sessions = await collect(sessionsTopic);
    const changelog = await collect(changelogTopic);
    const dead = await dlq.waitFor(2);
    expect(dead.map((d) => [d.headers['source-offset'], d.headers['error-code']]).sort()).toEqual([
      ['1', 'record_too_large'],
      ['2', 'record_too_large'],
    ]);
    const reasonOf = (offset: string) => dead.find((d) => d.headers['source-offset'] === offset)!;
    expect(reasonOf('1').headers['error-message']).toContain(sessionsTopic);
    expect(reasonOf('1').key).toBe(longId);
    expect(reasonOf('2').headers['error-message']).toContain(changelogTopic);

    // The other readings are applied as if the two had never come: the bloated vehicle's session starts at
    // its second reading.
    await eventually(
      async () =>
        metricValue(await metrics.metrics(), 'session_aggregator_sessions_ended_total', {
          reason: 'CHARGING_STOPPED',
        }) === 1,
      'the ok vehicle’s session ended and counted',
    );
    const decoded = await Promise.all(
      (await sessions.waitFor(3)).map(async (r) => (await reg.decode(r.value!)) as ChargingSession),
    );
    const seen = new Map(decoded.map((s) => [`${s.vehicleId}:${s.change}`, s]));
    expect([...seen.keys()].sort()).toEqual([`${bloated}:STARTED`, `${ok}:ENDED`, `${ok}:STARTED`].sort());
    expect(seen.get(`${bloated}:STARTED`)).toMatchObject({ startedAt: DAY + 9 * H, eventCount: 1 });
    // No state of the long-id vehicle, and the bloated one's without the refused reading.
    const keysOf = () => new Set(changelog.records.map((s) => s.key));
    await eventually(() => keysOf().has(ok) && keysOf().has(bloated), 'both vehicles’ states');
    expect(keysOf()).toEqual(new Set([ok, bloated]));
    for (const s of changelog.records) expect(s.value!.length).toBeLessThan(16 * 1024);
    expect(
      metricValue(await metrics.metrics(), 'session_aggregator_dead_letters_total', {
        reason: 'record_too_large',
      }),
    ).toBe(2);
    // Each refused reading is dead-lettered once, although its chunk was handled again to find it.
    expect(dlq.records).toHaveLength(2);
  });
});
