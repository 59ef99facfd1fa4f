import { spawn } from 'node:child_process';
import { join } from 'node:path';
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
  repoRoot,
  testEndpoints,
  testKafka,
  uniqueName,
  type RecordCollector,
} from '@ampflow/testing';
import { createAggregatorApp, type AggregatorSettings } from '../src/app';
import { DEFAULT_REDUCER_SETTINGS } from '../src/session-reducer';

const logger = pino({ level: 'silent' });
const kafka = testKafka();
const registry = () => new SchemaRegistry({ host: testEndpoints().schemaRegistryUrl });
/** What the aggregator reported as fatal (a stuck consumer or producer); every test expects none. */
const fatalErrors: unknown[] = [];
afterEach(() => {
  expect(fatalErrors.splice(0)).toEqual([]);
});
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const H = 3600_000;
const DAY = Date.parse('2025-08-05T00:00:00.000Z');
let seq = 0;

function reading(vehicleId: string, hour: number, fields: Partial<VehicleTelemetry>): VehicleTelemetry {
  seq += 1;
  const provider = vehicleId.split(':')[0]!;
  return {
    ...emptyTelemetry({
      eventId: `${provider}:evt-${seq}`,
      provider,
      vehicleId,
      providerVehicleId: vehicleId.split(':')[1]!,
      userId: null,
      occurredAt: DAY + hour * H,
      receivedAt: DAY + hour * H + 1000,
      sourceEventType: provider === 'smartcar' ? 'VEHICLE_STATE' : 'vehicle.charging-status',
    }),
    ...fields,
  };
}

/** A day of two vehicles per provider, with a redelivery and a late reading; returns the readings in delivery order. */
function scriptedDay(run: string) {
  const sa = `smartcar:${run}-a`;
  const sb = `smartcar:${run}-b`;
  const ta = `telematica:${run}-a`;
  const tb = `telematica:${run}-b`;
  const a1 = reading(sa, 8, {
    isCharging: true,
    isPluggedIn: true,
    stateOfChargePercent: 30,
    energyAddedKwh: 0,
    chargePowerKw: 7,
  });
  const readings = [
    a1,
    reading(sa, 8.5, { isCharging: true, stateOfChargePercent: 45, energyAddedKwh: 6.2, chargePowerKw: 11 }),
    { ...a1 }, // redelivered
    reading(sa, 9, { isCharging: false, stateOfChargePercent: 55, energyAddedKwh: 10.4 }),
    reading(sa, 8.75, { isCharging: true }), // late: older than the stop
    reading(sa, 20, {
      isCharging: true,
      isPluggedIn: true,
      stateOfChargePercent: 50,
      batteryCapacityKwh: 60,
    }),
    reading(sa, 21.5, { isPluggedIn: false, stateOfChargePercent: 80 }),
    reading(sb, 10, { chargingState: 'CHARGING', stateOfChargePercent: 70 }),
    reading(sb, 12, { chargingState: 'FULLY_CHARGED', isCharging: false, stateOfChargePercent: 100 }),
    reading(ta, 7, { isPluggedIn: true, isCharging: false, stateOfChargePercent: 20 }),
    reading(ta, 7.1, {
      isCharging: true,
      chargingState: 'CHARGING',
      isPluggedIn: true,
      stateOfChargePercent: 20,
    }),
    reading(ta, 8, { isCharging: true, isPluggedIn: true, stateOfChargePercent: 48, targetSocPercent: 80 }),
    reading(ta, 9, { isPluggedIn: false, isCharging: false, stateOfChargePercent: 52 }),
    reading(tb, 14, { isCharging: true, isPluggedIn: true, stateOfChargePercent: 10 }), // never stops: times out
  ];
  const expected = [
    [sa, 'STARTED'],
    [sa, 'UPDATED'],
    [sa, 'ENDED', 'CHARGING_STOPPED'],
    [sa, 'STARTED'],
    [sa, 'ENDED', 'UNPLUGGED'],
    [sb, 'STARTED'],
    [sb, 'ENDED', 'FULLY_CHARGED'],
    [ta, 'STARTED'],
    [ta, 'UPDATED'],
    [ta, 'ENDED', 'UNPLUGGED'],
    [tb, 'STARTED'],
  ];
  return { readings, expected, vehicles: [sa, sb, ta, tb] };
}

async function setupTopics() {
  const telemetryTopic = uniqueName('agg.telemetry');
  const sessionsTopic = uniqueName('agg.sessions');
  await ensureTopics(kafka, [{ topic: telemetryTopic, numPartitions: 3 }]);
  const reg = registry();
  const { id } = await reg.register(
    { type: SchemaType.AVRO, schema: canonicalSchema(Topics.vehicleTelemetry) },
    { subject: `${telemetryTopic}-value` },
  );
  const producer = createReliableProducer(kafka);
  await producer.connect();
  cleanups.push(() => producer.disconnect());
  const publish = async (readings: VehicleTelemetry[], topic = telemetryTopic) => {
    for (const r of readings) {
      await producer.send(topic, [{ key: r.vehicleId, value: await reg.encode(id, r) }]);
    }
  };
  return { telemetryTopic, sessionsTopic, publish, producer };
}

async function startAggregator(
  topics: { telemetryTopic: string; sessionsTopic: string },
  overrides: Partial<AggregatorSettings> & { now?: () => number } = {},
) {
  const { now, ...settingsOverrides } = overrides;
  const metrics = createMetricsRegistry('session-aggregator', { defaultMetrics: false });
  const app = createAggregatorApp({
    settings: {
      ...DEFAULT_REDUCER_SETTINGS,
      httpPort: 0,
      schemaRegistryUrl: testEndpoints().schemaRegistryUrl,
      shutdownDrainMs: 5_000,
      consumerGroupId: uniqueName('agg'),
      sessionsTopicPartitions: 3,
      sweepIntervalMs: 3_600_000,
      stateTtlSeconds: 3_600,
      redisNamespace: uniqueName('sessions'),
      changelogTopic: uniqueName('agg.changelog'),
      initialRetryMs: 100,
      maxRetryMs: 1_000,
      sessionTimeoutMs: 6_000,
      ...topics,
      ...settingsOverrides,
    },
    kafka,
    redis: new Redis(testEndpoints().redisUrl, { lazyConnect: true, enableAutoPipelining: true }),
    logger,
    registry: metrics,
    onFatal: (error) => fatalErrors.push(error),
    now,
  });
  await app.start();
  cleanups.push(() => app.stop());
  return { app, metrics: () => metrics.metrics() };
}

async function sessionsOn(topic: string): Promise<RecordCollector> {
  const c = await collectRecords(kafka, [topic]);
  cleanups.push(() => c.stop());
  return c;
}

async function decodeAll(c: RecordCollector): Promise<ChargingSession[]> {
  const reg = registry();
  return Promise.all(c.records.map(async (r) => (await reg.decode(r.value!)) as ChargingSession));
}

/** Sessions as the contract identifies them: one record per (sessionId, version), in version order per session. */
function distinct(sessions: ChargingSession[]): ChargingSession[] {
  const byKey = new Map<string, ChargingSession>();
  for (const s of sessions) {
    const key = `${s.sessionId}:${s.version}`;
    const seen = byKey.get(key);
    if (seen) expect(seen).toEqual(s); // a redelivered change is identical, never a different one
    byKey.set(key, s);
  }
  return [...byKey.values()].sort(
    (x, y) => x.vehicleId.localeCompare(y.vehicleId) || x.startedAt - y.startedAt || x.version - y.version,
  );
}

const shape = (sessions: ChargingSession[]) =>
  sessions.map((s) => (s.endReason ? [s.vehicleId, s.change, s.endReason] : [s.vehicleId, s.change]));

const sortedExpected = (expected: string[][]) => [...expected].sort((x, y) => x[0]!.localeCompare(y[0]!));

describe('session aggregator against the real Kafka, registry and Redis', () => {
  it('a scripted day of two vehicles per provider gives exactly the expected sessions; the timer ends the idle one', async () => {
    const topics = await setupTopics();
    let clock = Date.now();
    const { app, metrics } = await startAggregator(topics, { now: () => clock });
    const day = scriptedDay(uniqueName('day'));
    await topics.publish(day.readings);
    const out = await sessionsOn(topics.sessionsTopic);
    await out.waitFor(day.expected.length);
    await new Promise((r) => setTimeout(r, 300));
    expect(shape(distinct(await decodeAll(out)))).toEqual(sortedExpected(day.expected));

    // No reading for the last vehicle for longer than the inactivity timeout: the sweeper ends its session.
    clock += DEFAULT_REDUCER_SETTINGS.inactivityTimeoutMs + 1_000;
    expect(await app.sweep()).toBe(1);
    await out.waitFor(day.expected.length + 1);
    const all = distinct(await decodeAll(out));
    const timedOut = all.find((s) => s.endReason === 'INACTIVITY_TIMEOUT');
    expect(timedOut).toMatchObject({
      vehicleId: day.vehicles[3],
      endedAt: DAY + 14 * H,
      change: 'ENDED',
      version: 2,
    });
    expect(await app.sweep()).toBe(0);

    const first = all.find((s) => s.vehicleId === day.vehicles[0] && s.change === 'ENDED');
    expect(first).toMatchObject({
      startedAt: DAY + 8 * H,
      endedAt: DAY + 9 * H,
      durationSeconds: 3600,
      socStartPercent: 30,
      socEndPercent: 55,
      energyAddedKwh: 10.4,
      energySource: 'REPORTED',
      maxPowerKw: 11,
      eventCount: 3,
    });
    const second = all.find((s) => s.vehicleId === day.vehicles[0] && s.endReason === 'UNPLUGGED');
    expect(second).toMatchObject({ energySource: 'ESTIMATED_FROM_SOC', energyAddedKwh: 18 });
    const m = await metrics();
    expect(metricValue(m, 'session_aggregator_readings_total', { outcome: 'duplicate' })).toBe(1);
    expect(metricValue(m, 'session_aggregator_readings_total', { outcome: 'late' })).toBe(1);
    expect(metricValue(m, 'session_aggregator_sessions_ended_total', { reason: 'INACTIVITY_TIMEOUT' })).toBe(
      1,
    );
    expect(metricValue(m, 'session_aggregator_sessions_started_total')).toBe(5);
  });

  it('replaying the input from the beginning into a fresh Redis yields identical sessions and ids', async () => {
    const topics = await setupTopics();
    const day = scriptedDay(uniqueName('replay'));
    await topics.publish(day.readings);
    await startAggregator(topics);
    const first = await sessionsOn(topics.sessionsTopic);
    await first.waitFor(day.expected.length);
    await new Promise((r) => setTimeout(r, 300));
    const original = distinct(await decodeAll(first));

    const replayTopic = uniqueName('agg.sessions.replay');
    await startAggregator({ telemetryTopic: topics.telemetryTopic, sessionsTopic: replayTopic });
    const replay = await sessionsOn(replayTopic);
    await replay.waitFor(day.expected.length);
    await new Promise((r) => setTimeout(r, 300));
    expect(distinct(await decodeAll(replay))).toEqual(original);
  });

  it('killed mid-stream (SIGKILL) and restarted: the same sessions and ids, each change once', async () => {
    // The service as deployed, on topics of its own (KAFKA_TOPIC_PREFIX), never the platform's.
    const day = scriptedDay(uniqueName('kill'));
    const prefix = `${uniqueName('kill')}.`;
    const telemetryTopic = prefix + Topics.vehicleTelemetry;
    const topics = await setupTopics();
    const publish = (readings: VehicleTelemetry[]) => topics.publish(readings, telemetryTopic);
    await ensureTopics(kafka, [{ topic: telemetryTopic }, { topic: prefix + Topics.chargingSessions }]);
    const out = await sessionsOn(prefix + Topics.chargingSessions);
    const groupId = uniqueName('agg-kill');
    const namespace = uniqueName('sessions-kill');
    const changelogTopic = uniqueName('agg.changelog-kill');
    // The contract topic may hold other runs' records: only this test's vehicles are decoded.
    const mine = async () => {
      const reg = registry();
      const records = out.records.filter((r) => day.vehicles.includes(r.key ?? ''));
      return Promise.all(records.map(async (r) => (await reg.decode(r.value!)) as ChargingSession));
    };
    const runService = () => {
      const { kafkaBrokers, schemaRegistryUrl, redisUrl } = testEndpoints();
      const child = spawn(process.execPath, [join(repoRoot(), 'services/session-aggregator/dist/main.js')], {
        env: {
          PATH: process.env.PATH ?? '',
          KAFKA_BROKERS: kafkaBrokers.join(','),
          SCHEMA_REGISTRY_URL: schemaRegistryUrl,
          REDIS_URL: redisUrl,
          HTTP_PORT: '0',
          LOG_LEVEL: 'warn',
          AGGREGATOR_GROUP_ID: groupId,
          AGGREGATOR_REDIS_NAMESPACE: namespace,
          AGGREGATOR_CHANGELOG_TOPIC: changelogTopic,
          KAFKA_TOPIC_PREFIX: prefix,
        },
        stdio: 'ignore',
      });
      cleanups.push(async () => {
        child.kill('SIGKILL');
      });
      return child;
    };
    const firstRun = runService();
    const half = day.readings.findIndex((r) => r.vehicleId === day.vehicles[2]); // smartcar vehicles first
    await publish(day.readings.slice(0, half));
    await eventually(
      async () => (await mine()).length >= 7,
      'the smartcar sessions of the first half',
      60_000,
      200,
    );
    firstRun.kill('SIGKILL');
    await new Promise((resolve) => firstRun.once('exit', resolve));

    await publish(day.readings.slice(half));
    runService();
    await eventually(
      async () => distinct(await mine()).length >= day.expected.length,
      'all sessions after the restart',
      60_000,
      200,
    );
    await new Promise((r) => setTimeout(r, 500));
    const sessions = distinct(await mine());
    expect(shape(sessions)).toEqual(sortedExpected(day.expected));
    const ended = sessions.filter((s) => s.change === 'ENDED');
    expect(new Set(ended.map((s) => s.sessionId)).size).toBe(ended.length);
  });
});
