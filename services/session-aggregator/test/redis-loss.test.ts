import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import Redis from 'ioredis';
import pino from 'pino';
import { Topics, canonicalSchema, type ChargingSession, type VehicleTelemetry } from '@ampflow/contracts';
import { createReliableProducer, ensureTopics } from '@ampflow/kafka';
import { createMetricsRegistry } from '@ampflow/observability';
import {
  collectRecords,
  eventually,
  metricValue,
  startRedisProcess,
  testEndpoints,
  testKafka,
  uniqueName,
  type RecordCollector,
} from '@ampflow/testing';
import { createAggregatorApp, type AggregatorSettings } from '../src/app';
import { DEFAULT_REDUCER_SETTINGS } from '../src/session-reducer';
import { diffSessions, fleetScenario, type FleetScenario, type SessionsDiff } from './fleet-scenario';

const logger = pino({ level: 'silent' });
// The comparison of each run with the clean one goes to the test log: it is the figure the issue quotes.
const testLog = pino({ level: 'info', base: { test: 'redis-loss' } });
const kafka = testKafka();
const registry = new SchemaRegistry({ host: testEndpoints().schemaRegistryUrl });
/** What the aggregator reported as fatal (a stuck consumer or producer); every test expects none. */
const fatalErrors: unknown[] = [];
afterEach(() => {
  expect(fatalErrors.splice(0)).toEqual([]);
});
const cleanups: Array<() => Promise<void>> = [];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function runCleanups() {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
}
afterEach(runCleanups);
afterAll(runCleanups);

type Disruption = 'none' | 'kill-between-phases' | 'flush-while-running';

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

/**
 * Runs the fleet scenario through a real aggregator with a Redis of its own: phase A, the disruption, phase B,
 * then the wall clock moves past the inactivity timeout and the sweeper runs. Returns every session change.
 */
async function runFleet(
  fleet: FleetScenario,
  disruption: Disruption,
): Promise<{ sessions: ChargingSession[]; metrics: string }> {
  const redis = await startRedisProcess();
  cleanups.push(() => redis.stop());
  const telemetryTopic = uniqueName('loss.telemetry');
  const sessionsTopic = uniqueName('loss.sessions');
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
    consumerGroupId: uniqueName('loss'),
    sessionsTopicPartitions: 3,
    sweepIntervalMs: 3_600_000, // the test sweeps by hand
    stateTtlSeconds: 30 * 24 * 3600,
    redisNamespace: uniqueName('sessions'),
    initialRetryMs: 100,
    maxRetryMs: 500,
    sessionTimeoutMs: 6_000,
    telemetryTopic,
    sessionsTopic,
    changelogTopic: uniqueName('loss.changelog'),
  };
  const app = createAggregatorApp({
    settings,
    kafka,
    redis: new Redis(redis.url, { lazyConnect: true, enableAutoPipelining: true }),
    logger,
    registry: metricsRegistry,
    onFatal: (error) => fatalErrors.push(error),
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

  const half = Math.floor(fleet.phaseB.length / 2);
  if (disruption === 'kill-between-phases') {
    await redis.kill('SIGKILL');
    await redis.restart();
    await publish(fleet.phaseB);
  } else if (disruption === 'flush-while-running') {
    await publish(fleet.phaseB.slice(0, half));
    await redis.flushAll();
    await publish(fleet.phaseB.slice(half));
  } else {
    await publish(fleet.phaseB);
  }
  await taken(fleet.phaseA.length + fleet.phaseB.length, 'phase B taken in');
  await settled(out);
  if (disruption === 'flush-while-running') await redis.flushAll(); // the sweeper must find its deadlines again

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

const noDifference: SessionsDiff = {
  referenceChanges: 0,
  changes: 0,
  missing: 0,
  extra: 0,
  different: 0,
  conflicting: 0,
  extraStarted: 0,
  neverEnded: 0,
};

describe('session aggregator when its Redis (no persistence) loses everything', () => {
  const fleet = fleetScenario(uniqueName('fleet'), 200);
  let clean: ChargingSession[] = [];

  beforeAll(async () => {
    clean = (await runFleet(fleet, 'none')).sessions;
    await runCleanups();
    const started = clean.filter((s) => s.change === 'STARTED').length;
    const timedOut = clean.filter((s) => s.endReason === 'INACTIVITY_TIMEOUT').length;
    testLog.info({ records: clean.length, started, timedOut, openAfterA: fleet.openAfterA }, 'clean run');
  }, 120_000);

  it('the clean run ends every session, the idle ones by the sweeper', () => {
    const diff = diffSessions(clean, clean);
    expect(diff.conflicting).toBe(0);
    const started = new Set(clean.filter((s) => s.change === 'STARTED').map((s) => s.sessionId));
    const ended = new Set(clean.filter((s) => s.change === 'ENDED').map((s) => s.sessionId));
    expect(ended).toEqual(started);
    expect(clean.filter((s) => s.endReason === 'INACTIVITY_TIMEOUT')).toHaveLength(fleet.expectedTimeouts);
  });

  it.each<Disruption>(['kill-between-phases', 'flush-while-running'])(
    'Redis %s: exactly the clean run’s sessions, none started twice, every one ended',
    async (disruption) => {
      const { sessions, metrics } = await runFleet(fleet, disruption);
      const diff = diffSessions(clean, sessions);
      const restores = metricValue(metrics, 'session_aggregator_state_restores_total', {
        outcome: 'completed',
      });
      const resets = ['load', 'save']
        .map((at) => metricValue(metrics, 'session_aggregator_state_resets_total', { at }) ?? 0)
        .reduce((a, b) => a + b, 0);
      testLog.info({ disruption, restores, resets, ...diff }, 'sessions compared with the clean run');
      // The empty Redis at start is one restore; each loss found by a chunk or the sweeper is another.
      expect(restores).toBeGreaterThanOrEqual(2);
      expect(resets).toBeGreaterThanOrEqual(1);
      expect({ ...diff, referenceChanges: 0, changes: 0 }).toEqual(noDifference);
      expect(diff.changes).toBe(diff.referenceChanges);
    },
    120_000,
  );
});
