import pino from 'pino';
import { Topics, type ChargingSession, type VehicleTelemetry } from '@ampflow/contracts';
import { createAvroCodec, createRegistryClient } from '@ampflow/kafka';
import { createTopics, testEndpoints, testKafka, uniqueName } from '@ampflow/testing';
import { createIndexFeeder, type IndexFeeder } from '../../src/data/index-feeder';
import { createSessionStore } from '../../src/data/sessions';
import { consoleTopics } from '../../src/data/topics';
import { createTraceIndex } from '../../src/data/trace-index';

/**
 * The trace index's consumer on the real Kafka and registry: it reads only the retention window (the sessions
 * topic whole), picks up topics created after it started, and keeps one copy of a record read again.
 */

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const prefix = `${uniqueName('console-feeder')}.`;
const kafka = testKafka();
const topics = consoleTopics(prefix);
const HOUR = 3_600_000;

function aReading(id: string, occurredAt: number): VehicleTelemetry {
  return {
    eventId: `smartcar:${id}`,
    provider: 'smartcar',
    vehicleId: 'smartcar:v1',
    providerVehicleId: 'v1',
    userId: null,
    occurredAt,
    receivedAt: occurredAt,
    sourceEventType: 'VEHICLE_STATE',
    isCharging: null,
    isPluggedIn: null,
    chargingState: null,
    stateOfChargePercent: 50,
    rangeKm: null,
    chargePowerKw: null,
    chargeVoltageV: null,
    chargeCurrentA: null,
    energyAddedKwh: null,
    chargeLimitPercent: null,
    targetSocPercent: null,
    timeToCompleteMinutes: null,
    batteryCapacityKwh: null,
    location: null,
    odometerKm: null,
    vehicle: null,
    triggers: [],
  };
}

async function eventually(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('trace index feeder (real Kafka and registry)', () => {
  const codec = createAvroCodec({ client: createRegistryClient(testEndpoints().schemaRegistryUrl), logger });
  const index = createTraceIndex({ maxEvents: 1_000, maxAgeMs: HOUR });
  const sessions = createSessionStore({ maxSessions: 1_000 });
  let feeder: IndexFeeder;
  const producer = kafka.producer();

  beforeAll(async () => {
    await producer.connect();
    feeder = createIndexFeeder({
      kafka,
      codec,
      topics,
      index,
      sessions,
      maxAgeMs: HOUR,
      recheckMs: 300,
      logger,
    });
  });

  afterAll(async () => {
    await feeder?.stop();
    await producer.disconnect();
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [topics.telemetry, topics.sessions] }).catch(() => undefined);
    await admin.disconnect();
  });

  it('starts with none of its topics, then reads them as they appear, within the retention window', async () => {
    await feeder.start();
    expect(feeder.running()).toBe(false);
    // None of its topics exists: nothing to read, which is not a failure (the console stays ready).
    expect(feeder.waitingForTopics()).toBe(true);
    expect(feeder.missingTopics()).toContain(topics.telemetry);

    await createTopics(kafka, [topics.telemetry], 2);
    await codec.register(topics.telemetry, Topics.vehicleTelemetry);
    const now = Date.now();
    await producer.send({
      topic: topics.telemetry,
      messages: [
        // Written two hours ago: older than the window, never indexed.
        {
          key: 'smartcar:v1',
          value: codec.encode(topics.telemetry, aReading('old', now - 2 * HOUR)),
          timestamp: String(now - 2 * HOUR),
        },
        { key: 'smartcar:v1', value: codec.encode(topics.telemetry, aReading('new', now)) },
      ],
    });
    await eventually('the new reading', () => index.byTraceId('smartcar:new').length === 1);
    expect(feeder.running()).toBe(true);
    expect(feeder.waitingForTopics()).toBe(false);
    expect(index.byTraceId('smartcar:old')).toEqual([]);

    // The sessions topic appears later; it is read whole, however old its records.
    await createTopics(kafka, [topics.sessions], 1);
    await codec.register(topics.sessions, Topics.chargingSessions);
    const change: ChargingSession = {
      sessionId: 'old-session',
      vehicleId: 'smartcar:v1',
      provider: 'smartcar',
      userId: null,
      change: 'STARTED',
      status: 'ACTIVE',
      startedAt: now - 3 * HOUR,
      endedAt: null,
      durationSeconds: null,
      socStartPercent: 20,
      socEndPercent: 20,
      energyAddedKwh: null,
      energySource: 'UNKNOWN',
      maxPowerKw: null,
      location: null,
      endReason: null,
      eventCount: 1,
      version: 1,
    };
    await producer.send({
      topic: topics.sessions,
      messages: [
        {
          key: 'smartcar:v1',
          value: codec.encode(topics.sessions, change),
          timestamp: String(now - 3 * HOUR),
        },
      ],
    });
    await eventually('the old session', () => sessions.get('old-session') !== undefined);
    expect(sessions.open().map((s) => s.sessionId)).toEqual(['old-session']);
    // The rebuilt consumer read the telemetry again: still one copy.
    await eventually(
      'the rebuilt consumer',
      () => feeder.running() && !feeder.missingTopics().includes(topics.sessions),
    );
    expect(index.byTraceId('smartcar:new')).toHaveLength(1);
    // The old session change is older than the window: in the session store, not in the trace index.
    expect(index.recordsOfVehicle('smartcar:v1', Topics.chargingSessions)).toEqual([]);
  });
});
