import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import pino from 'pino';
import {
  RawHeaders,
  Topics,
  dlqTopic,
  type ChargingSession,
  type VehicleTelemetry,
} from '@ampflow/contracts';
import { createAvroCodec, createRegistryClient } from '@ampflow/kafka';
import { createMetricsRegistry } from '@ampflow/observability';
import { createTopics, metricValue, testEndpoints, testKafka, uniqueName } from '@ampflow/testing';
import { createConsoleData, type ConsoleData } from '../../src/data';
import { messageId } from '../../src/data/webhook-ids';

/**
 * The console's operator data against the real Kafka and schema registry, on topics of its own (a unique
 * KAFKA_TOPIC_PREFIX, deleted afterwards). The notifier's admin API and the services' /metrics are small local
 * servers that speak their documented formats: services never import services, and what is under test is how
 * the console reads them.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const prefix = `${uniqueName('console-data')}.`;
const kafka = testKafka();
const TOKEN = 'test-admin-token-console-data-0123';
const VEHICLE = 'smartcar:veh-1';
const OTHER = 'smartcar:veh-2';
const T0 = Date.now() - 10 * 60_000;

const topic = {
  raw: prefix + Topics.rawSmartcar,
  rawDlq: dlqTopic(prefix + Topics.rawSmartcar),
  telemetry: prefix + Topics.vehicleTelemetry,
  sessions: prefix + Topics.chargingSessions,
  deliveriesDlq: prefix + Topics.webhookDeliveriesDlq,
};
const lagGroup = `${prefix}lagging-group`;

function aReading(n: number, overrides: Partial<VehicleTelemetry> = {}): VehicleTelemetry {
  return {
    eventId: `smartcar:e${n}`,
    provider: 'smartcar',
    vehicleId: VEHICLE,
    providerVehicleId: 'veh-1',
    userId: null,
    occurredAt: T0 + n * 60_000,
    receivedAt: T0 + n * 60_000 + 500,
    sourceEventType: 'VEHICLE_STATE',
    isCharging: true,
    isPluggedIn: true,
    chargingState: 'CHARGING',
    stateOfChargePercent: 40 + n * 5,
    rangeKm: null,
    chargePowerKw: 11 - n,
    chargeVoltageV: null,
    chargeCurrentA: null,
    energyAddedKwh: n * 2,
    chargeLimitPercent: null,
    targetSocPercent: null,
    timeToCompleteMinutes: null,
    batteryCapacityKwh: 60,
    location: { latitude: 52.37, longitude: 4.89 },
    odometerKm: null,
    vehicle: { make: 'Tesla', model: 'Model 3', year: 2022, vin: '5YJ3E1EA7KF000001', nickname: null },
    triggers: [],
    ...overrides,
  };
}

function aChange(overrides: Partial<ChargingSession>): ChargingSession {
  return {
    sessionId: 'sess-1',
    vehicleId: VEHICLE,
    provider: 'smartcar',
    userId: null,
    change: 'STARTED',
    status: 'ACTIVE',
    startedAt: T0,
    endedAt: null,
    durationSeconds: null,
    socStartPercent: 40,
    socEndPercent: 40,
    energyAddedKwh: 0,
    energySource: 'REPORTED',
    maxPowerKw: 11,
    location: { latitude: 52.37, longitude: 4.89 },
    endReason: null,
    eventCount: 1,
    version: 1,
    ...overrides,
  };
}

const readings = [
  aReading(0),
  aReading(1),
  aReading(2, { isCharging: false, chargingState: 'NOT_CHARGING' }),
];
const changes = [
  aChange({}),
  aChange({ change: 'UPDATED', version: 2, eventCount: 2, socEndPercent: 45, energyAddedKwh: 2 }),
  aChange({
    change: 'ENDED',
    status: 'COMPLETED',
    version: 3,
    eventCount: 3,
    endedAt: T0 + 120_000,
    durationSeconds: 120,
    socEndPercent: 50,
    energyAddedKwh: 4,
    endReason: 'CHARGING_STOPPED',
  }),
  aChange({ sessionId: 'sess-2', vehicleId: OTHER, startedAt: T0 + 30_000 }),
];

const telemetryMessage = messageId('smartcar:e0', 'vehicle.telemetry');
const startedMessage = messageId('sess-1:1', 'charging_session.started');

/** The notifier's admin API as the console reads it: attempts per message, Bearer token required. */
function fakeNotifier(): Server {
  return createServer((req, res) => {
    if (req.headers.authorization !== `Bearer ${TOKEN}`) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":{"code":"unauthorized"}}');
      return;
    }
    const match = /^\/v1\/messages\/([^/]+)\/attempts$/.exec(req.url ?? '');
    const id = match?.[1];
    const attempts =
      id === telemetryMessage || id === startedMessage
        ? [{ messageId: id, endpointId: 'ep_1', status: 200, attempt: 1, outcome: 'delivered' }]
        : [];
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ data: attempts }));
  });
}

/** A notifier /metrics whose counters grow by the same amounts at every scrape. */
function fakeMetrics(): Server {
  let scrapes = 0;
  return createServer((_req, res) => {
    scrapes += 1;
    res
      .writeHead(200, { 'content-type': 'text/plain; version=0.0.4' })
      .end(
        [
          '# TYPE notifier_events_total counter',
          `notifier_events_total{type="vehicle.telemetry",service="notifier"} ${scrapes * 50}`,
          '# TYPE notifier_deliveries_total counter',
          `notifier_deliveries_total{outcome="delivered",status_class="2xx",service="notifier"} ${scrapes * 30}`,
          `notifier_deliveries_total{outcome="retry_scheduled",status_class="5xx",service="notifier"} ${scrapes * 10}`,
          '',
        ].join('\n'),
      );
  });
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('console operator data (real Kafka and registry)', () => {
  const registry = createMetricsRegistry('console', { defaultMetrics: false });
  const servers: Server[] = [];
  let data: ConsoleData;
  let base: string;

  async function get(path: string): Promise<{ status: number; body: Json }> {
    const res = await fetch(`${base}/api/ops${path}`);
    return { status: res.status, body: await res.json() };
  }

  beforeAll(async () => {
    await createTopics(kafka, Object.values(topic), 2);
    const codec = createAvroCodec({
      client: createRegistryClient(testEndpoints().schemaRegistryUrl),
      logger,
    });
    await codec.register(topic.telemetry, Topics.vehicleTelemetry);
    await codec.register(topic.sessions, Topics.chargingSessions);
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic: topic.raw,
      messages: [
        {
          key: 'veh-1',
          value: JSON.stringify({
            eventId: 'e0',
            data: { vehicle: { id: 'veh-1', vin: '5YJ3E1EA7KF000001' } },
          }),
          headers: {
            [RawHeaders.provider]: 'smartcar',
            [RawHeaders.eventId]: 'e0',
            [RawHeaders.eventType]: 'VEHICLE_STATE',
            [RawHeaders.receivedAt]: new Date(T0).toISOString(),
            [RawHeaders.contentType]: 'application/json',
          },
        },
      ],
    });
    await producer.send({
      topic: topic.telemetry,
      messages: readings.map((r) => ({
        key: r.vehicleId,
        value: codec.encode(topic.telemetry, r),
        headers: { 'event-id': r.eventId, provider: 'smartcar' },
      })),
    });
    await producer.send({
      topic: topic.sessions,
      messages: changes.map((c) => ({
        key: c.vehicleId,
        value: codec.encode(topic.sessions, c),
        headers: { 'event-id': `${c.sessionId}:${c.version}`, provider: 'smartcar' },
      })),
    });
    await producer.send({
      topic: topic.deliveriesDlq,
      messages: [
        { key: 'm1:ep_1', value: '{}' },
        { key: 'm2:ep_1', value: '{}' },
      ],
    });
    await producer.disconnect();
    // A group that committed one of the three readings (all on one partition: one key).
    const admin = kafka.admin();
    await admin.connect();
    const ends = await admin.fetchTopicOffsets(topic.telemetry);
    await admin.setOffsets({
      groupId: lagGroup,
      topic: topic.telemetry,
      partitions: ends.map((p) => ({
        partition: p.partition,
        offset: Number(p.high) > 0 ? String(Number(p.high) - 2) : p.high,
      })),
    });
    await admin.disconnect();

    const notifier = fakeNotifier();
    const metrics = fakeMetrics();
    servers.push(notifier, metrics);
    const notifierUrl = await listen(notifier);
    const metricsUrl = await listen(metrics);
    data = createConsoleData({
      kafka,
      schemaRegistryUrl: testEndpoints().schemaRegistryUrl,
      topicPrefix: prefix,
      metricsTargets: [
        { service: 'notifier', url: `${metricsUrl}/metrics` },
        { service: 'normalizer', url: 'http://127.0.0.1:1/metrics' },
      ],
      notifier: { baseUrl: notifierUrl, adminToken: TOKEN },
      logger,
      registry,
    });
    const app = express();
    app.use('/api/ops', data.router);
    const server = createServer(app);
    servers.push(server);
    base = await listen(server);
    await data.start();
  });

  afterAll(async () => {
    await data?.stop();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteGroups([lagGroup]).catch(() => undefined);
    await admin.deleteTopics({ topics: Object.values(topic) }).catch(() => undefined);
    await admin.disconnect();
  });

  it('is ready once it reads the topics', () => {
    expect(data.ready()).toBe(true);
  });

  it('traces a provider event: raw record, canonical record, the session change and webhooks with attempts', async () => {
    const trace = await eventually('the trace of e0', async () => {
      const { body } = await get('/trace?eventId=e0');
      const t = body.data?.[0];
      return t && t.raw.length === 1 && t.canonical.length === 1 && t.sessionChanges.length === 1
        ? t
        : undefined;
    });
    expect(trace.eventId).toBe('smartcar:e0');
    expect(trace.raw[0]).toMatchObject({ topic: topic.raw, key: 'veh-1', headers: { 'event-id': 'e0' } });
    expect(trace.raw[0].value).toEqual({
      eventId: 'e0',
      data: { vehicle: { id: 'veh-1', vin: '[redacted]' } },
    });
    expect(trace.canonical[0]).toMatchObject({ topic: topic.telemetry, key: VEHICLE });
    expect(trace.canonical[0].value).toMatchObject({
      eventId: 'smartcar:e0',
      stateOfChargePercent: 40,
      location: { latitude: '[redacted]', longitude: '[redacted]' },
      vehicle: { vin: '[redacted]', make: 'Tesla' },
    });
    expect(JSON.stringify(trace)).not.toContain('5YJ3E1EA7KF000001');
    expect(trace.sessionChanges[0]).toMatchObject({
      attribution: 'started_at',
      session: { sessionId: 'sess-1', version: 1, status: 'ACTIVE' },
    });
    const webhooks = Object.fromEntries(trace.webhooks.map((w: Json) => [w.type, w]));
    expect(webhooks['vehicle.telemetry']).toMatchObject({
      messageId: telemetryMessage,
      attempts: [{ status: 200 }],
    });
    expect(webhooks['charging_session.started']).toMatchObject({
      messageId: startedMessage,
      attempts: [{ status: 200 }],
    });
    // A plug change the notifier did not make (no attempts) is not shown.
    expect(webhooks['vehicle.plugged_in']).toBeUndefined();
  });

  it('ties the update and the end to the readings that caused them, and accepts the canonical id', async () => {
    const second = (await get('/trace?eventId=smartcar:e1')).body.data[0];
    expect(second.sessionChanges.map((c: Json) => [c.session.version, c.attribution])).toEqual([
      [2, 'reading_count'],
    ]);
    const third = (await get('/trace?eventId=e2')).body.data[0];
    expect(third.sessionChanges.map((c: Json) => [c.session.version, c.attribution])).toEqual([
      [3, 'ended_at'],
    ]);
    expect(third.webhooks.map((w: Json) => w.type)).toContain('charging_session.ended');
  });

  it('traces a vehicle newest first, and refuses a query naming neither', async () => {
    const { body } = await get(`/trace?vehicle=${encodeURIComponent(VEHICLE)}&limit=2`);
    expect(body.data.map((t: Json) => t.eventId)).toEqual(['smartcar:e2', 'smartcar:e1']);
    expect(body.retention).toMatchObject({ maxEvents: 100_000, maxAgeMs: 86_400_000 });
    expect((await get('/trace')).status).toBe(400);
    expect((await get('/trace?eventId=unknown')).body.data).toEqual([]);
  });

  it("lists a vehicle's sessions and the fleet's open ones, and charts a session from the telemetry", async () => {
    const sessions = (await get(`/vehicles/${encodeURIComponent(VEHICLE)}/sessions`)).body.data;
    expect(sessions).toEqual([
      expect.objectContaining({
        sessionId: 'sess-1',
        status: 'COMPLETED',
        startedAt: new Date(T0).toISOString(),
        endedAt: new Date(T0 + 120_000).toISOString(),
        energyAddedKwh: 4,
        socStartPercent: 40,
        socEndPercent: 50,
        endReason: 'CHARGING_STOPPED',
      }),
    ]);
    expect(sessions[0]).not.toHaveProperty('location');
    const open = (await get('/sessions/open')).body.data;
    expect(open.map((s: Json) => s.sessionId)).toEqual(['sess-2']);
    const detail = (await get('/sessions/sess-1')).body;
    expect(detail.series).toEqual([
      { at: new Date(T0).toISOString(), socPercent: 40, powerKw: 11 },
      { at: new Date(T0 + 60_000).toISOString(), socPercent: 45, powerKw: 10 },
      { at: new Date(T0 + 120_000).toISOString(), socPercent: 50, powerKw: 9 },
    ]);
    expect(detail.seriesComplete).toBe(true);
    expect((await get('/sessions/no-such-session')).status).toBe(404);
  });

  it('samples the pipeline: lag per group, dead letters per topic, rates from /metrics, failures listed', async () => {
    const samples = await eventually(
      'two pipeline samples',
      async () => {
        const { body } = await get('/pipeline');
        return body.data.length >= 2 ? body.data : undefined;
      },
      20_000,
    );
    const last = samples[samples.length - 1];
    expect(last.consumerLag[lagGroup]).toBe(2);
    // Its own trace-index group (offsets set, never committed) is not the platform's lag.
    expect(Object.keys(last.consumerLag).filter((g) => g.startsWith('ampflow-console-index-'))).toEqual([]);
    expect(last.deadLetters[topic.deliveriesDlq]).toBe(2);
    expect(last.deadLetters[topic.rawDlq]).toBe(0);
    expect(last.recordsPerSecond.notifier).toBeGreaterThan(0);
    expect(last.deliveriesPerSecond).toBeGreaterThan(0);
    expect(last.failureRate).toBe(0.25);
    expect(last.recordsPerSecond.normalizer).toBeNull();
    expect(last.errors.some((e: string) => e.startsWith('normalizer /metrics'))).toBe(true);
  });

  it('counts what it holds on the console_ metrics', async () => {
    const text = await registry.metrics();
    expect(metricValue(text, 'console_trace_index_records')).toBeGreaterThanOrEqual(8);
    expect(metricValue(text, 'console_trace_index_sessions')).toBe(2);
    expect(
      metricValue(text, 'console_trace_index_records_read_total', { topic: Topics.vehicleTelemetry }),
    ).toBe(3);
  });
});
