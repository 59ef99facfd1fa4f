import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import type { Logger } from 'pino';
import { Topics, canonicalSchema, type ChargingSession, type VehicleTelemetry } from '@ampflow/contracts';
import { createReliableProducer, ensureTopics } from '@ampflow/kafka';
import { createMetricsRegistry } from '@ampflow/observability';
import type { RedisClient } from '@ampflow/runtime/redis';
import {
  collectRecords,
  eventually,
  metricValue,
  testEndpoints,
  testKafka,
  uniqueName,
  type RecordCollector,
} from '@ampflow/testing';
import { createAggregatorApp, type AggregatorSettings } from '../src/app';
import { DEFAULT_REDUCER_SETTINGS } from '../src/session-reducer';
import type { FleetScenario, SessionsDiff } from './fleet-scenario';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A run's {@link SessionsDiff} against the clean run when nothing differs (counts zeroed by the caller). */
export const noDifference: SessionsDiff = {
  referenceChanges: 0,
  changes: 0,
  missing: 0,
  extra: 0,
  different: 0,
  conflicting: 0,
  extraStarted: 0,
  neverEnded: 0,
};

/** Readings the aggregator has taken in so far (every outcome; a retried chunk counts again). */
async function readingsSeen(metrics: () => Promise<string>): Promise<number> {
  const text = await metrics();
  return ['applied', 'duplicate', 'late']
    .map((outcome) => metricValue(text, 'session_aggregator_readings_total', { outcome }) ?? 0)
    .reduce((a, b) => a + b, 0);
}

/** Waits until no record arrived for `quietMs`. */
async function settled(out: RecordCollector, quietMs = 1_000): Promise<void> {
  let seen = -1;
  while (out.records.length !== seen) {
    seen = out.records.length;
    await sleep(quietMs);
  }
}

export interface FleetRunOptions {
  /** Names the run's topics and group (`<name>.telemetry`, ...). */
  name: string;
  /** The aggregator's Redis: a server or a cluster of the test's own. */
  redis: RedisClient;
  /** Sends phase B, with whatever the test does to Redis meanwhile. */
  phaseB(
    publish: (readings: VehicleTelemetry[]) => Promise<void>,
    readings: VehicleTelemetry[],
  ): Promise<void>;
  /** Once phase B is taken in and the session changes settled, before the clock moves and the sweeper runs. */
  beforeSweep?(): Promise<void>;
  /** Where the run's clean-ups go (run by the test after each test). */
  cleanups: Array<() => Promise<void>>;
  /** What the aggregator reports as fatal. */
  fatalErrors: unknown[];
  logger: Logger;
}

/**
 * Runs the fleet scenario through a real aggregator: phase A, phase B (`options.phaseB`, with the test's
 * disruption), then the wall clock moves past the inactivity timeout and the sweeper runs. Returns every
 * session change and the aggregator's metrics.
 */
export async function runFleet(
  fleet: FleetScenario,
  options: FleetRunOptions,
): Promise<{ sessions: ChargingSession[]; metrics: string }> {
  const { cleanups, name } = options;
  const kafka = testKafka();
  const registry = new SchemaRegistry({ host: testEndpoints().schemaRegistryUrl });
  const telemetryTopic = uniqueName(`${name}.telemetry`);
  const sessionsTopic = uniqueName(`${name}.sessions`);
  await ensureTopics(kafka, [{ topic: telemetryTopic, numPartitions: 3 }]);
  const { id } = await registry.register(
    { type: SchemaType.AVRO, schema: canonicalSchema(Topics.vehicleTelemetry) },
    { subject: `${telemetryTopic}-value` },
  );
  const producer = createReliableProducer(kafka);
  await producer.connect();
  cleanups.push(() => producer.disconnect());
  const publish = async (readings: VehicleTelemetry[]) => {
    const messages = await Promise.all(
      readings.map(async (r) => ({ key: r.vehicleId, value: await registry.encode(id, r) })),
    );
    // One send keeps each vehicle's readings in order (same key, same partition, one batch).
    await producer.send(telemetryTopic, messages);
  };

  let clock = Date.parse('2025-09-02T00:00:00.000Z');
  const metricsRegistry = createMetricsRegistry('session-aggregator', { defaultMetrics: false });
  const settings: AggregatorSettings = {
    ...DEFAULT_REDUCER_SETTINGS,
    httpPort: 0,
    schemaRegistryUrl: testEndpoints().schemaRegistryUrl,
    shutdownDrainMs: 5_000,
    consumerGroupId: uniqueName(name),
    sessionsTopicPartitions: 3,
    sweepIntervalMs: 3_600_000, // the test sweeps by hand
    stateTtlSeconds: 30 * 24 * 3600,
    redisNamespace: uniqueName('sessions'),
    initialRetryMs: 100,
    maxRetryMs: 500,
    sessionTimeoutMs: 6_000,
    telemetryTopic,
    sessionsTopic,
    changelogTopic: uniqueName(`${name}.changelog`),
  };
  const app = createAggregatorApp({
    settings,
    kafka,
    redis: options.redis,
    logger: options.logger,
    registry: metricsRegistry,
    onFatal: (error) => options.fatalErrors.push(error),
    now: () => clock,
  });
  await app.start();
  cleanups.push(() => app.stop());
  const out = await collectRecords(kafka, [sessionsTopic]);
  cleanups.push(() => out.stop());
  const taken = (count: number, what: string) =>
    eventually(async () => (await readingsSeen(() => metricsRegistry.metrics())) >= count, what, 60_000, 100);

  await publish(fleet.phaseA);
  await taken(fleet.phaseA.length, 'phase A taken in');
  await settled(out);

  await options.phaseB(publish, fleet.phaseB);
  await taken(fleet.phaseA.length + fleet.phaseB.length, 'phase B taken in');
  await settled(out);
  await options.beforeSweep?.();

  clock += DEFAULT_REDUCER_SETTINGS.inactivityTimeoutMs + 60_000;
  let ended = 0;
  const until = Date.now() + 20_000;
  while (ended < fleet.expectedTimeouts && Date.now() < until) {
    ended += await app.sweep().catch(() => 0);
    if (ended < fleet.expectedTimeouts) await sleep(200);
  }
  await settled(out);
  const sessions = await Promise.all(
    out.records.map(async (r) => (await registry.decode(r.value!)) as ChargingSession),
  );
  return { sessions, metrics: await metricsRegistry.metrics() };
}
