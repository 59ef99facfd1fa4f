import type { ChargingSession, VehicleTelemetry } from '@ampflow/contracts';
import { buildTraces, resolveTraceIds } from './trace';
import { createTraceIndex, type IndexedRecord } from './trace-index';
import { messageId } from './webhook-ids';

const T0 = Date.parse('2026-12-01T10:00:00Z');
let offset = 0;

function aRecord(overrides: Partial<IndexedRecord>): IndexedRecord {
  return {
    topic: 'ev.vehicle-telemetry.v1',
    stream: 'ev.vehicle-telemetry.v1',
    partition: 0,
    offset: String(offset++),
    timestampMs: T0,
    key: 'smartcar:v1',
    headers: {},
    kind: 'canonical',
    traceId: 'smartcar:e1',
    vehicleIds: ['smartcar:v1'],
    value: {},
    approxBytes: 100,
    ...overrides,
  };
}

const reading = {
  eventId: 'smartcar:e1',
  vehicleId: 'smartcar:v1',
  occurredAt: T0,
  isPluggedIn: true,
  vehicle: { vin: 'VIN123' },
} as unknown as VehicleTelemetry;
const started = {
  sessionId: 's1',
  vehicleId: 'smartcar:v1',
  change: 'STARTED',
  status: 'ACTIVE',
  startedAt: T0,
  endedAt: null,
  version: 1,
  eventCount: 1,
} as ChargingSession;

function anIndex() {
  const index = createTraceIndex({ maxEvents: 100, maxAgeMs: 60_000 });
  index.add(
    aRecord({
      kind: 'raw',
      topic: 'ev.raw.smartcar.v1',
      stream: 'ev.raw.smartcar.v1',
      headers: { provider: 'smartcar', 'event-id': 'e1' },
      value: '{"data":{"vin":"VIN123"}}',
    }),
  );
  index.add(aRecord({ value: reading }));
  index.add(
    aRecord({
      topic: 'ev.charging-sessions.v1',
      stream: 'ev.charging-sessions.v1',
      kind: 'session',
      traceId: null,
      value: started,
    }),
  );
  return index;
}

describe('trace assembly', () => {
  it('finds an event by the provider id or the canonical id', () => {
    const index = anIndex();
    expect(resolveTraceIds(index, 'e1')).toEqual(['smartcar:e1']);
    expect(resolveTraceIds(index, 'smartcar:e1')).toEqual(['smartcar:e1']);
    expect(resolveTraceIds(index, 'e2')).toEqual([]);
  });

  it('joins the raw body (parsed, redacted), the canonical record, the session change and the attempts', async () => {
    const asked: string[] = [];
    const plugged = messageId('smartcar:e1', 'vehicle.plugged_in');
    const [trace] = await buildTraces(anIndex(), ['smartcar:e1'], async (id) => {
      asked.push(id);
      return id === plugged ? [{ status: 200 }] : [];
    });
    expect(trace!.raw[0]!.value).toEqual({ data: { vin: '[redacted]' } });
    expect(trace!.canonical[0]!.value).toMatchObject({ vehicle: { vin: '[redacted]' } });
    expect(trace!.sessionChanges.map((c) => [c.session.sessionId, c.attribution])).toEqual([
      ['s1', 'started_at'],
    ]);
    // telemetry, the two possible plug events, the session start: all asked; the unplug (no attempts) not shown.
    expect(asked).toHaveLength(4);
    expect(trace!.webhooks.map((w) => [w.type, w.attempts])).toEqual([
      ['vehicle.telemetry', []],
      ['vehicle.plugged_in', [{ status: 200 }]],
      ['charging_session.started', []],
    ]);
  });

  it('shows a webhook whose attempts the notifier could not give, with the reason', async () => {
    const [trace] = await buildTraces(anIndex(), ['smartcar:e1'], () =>
      Promise.reject(new Error('notifier down')),
    );
    expect(trace!.webhooks.map((w) => [w.type, w.attempts, w.error])).toEqual([
      ['vehicle.telemetry', null, 'notifier down'],
      ['charging_session.started', null, 'notifier down'],
    ]);
  });

  it('shows an undecodable canonical record with its reason and derives nothing from it', async () => {
    const index = createTraceIndex({ maxEvents: 100, maxAgeMs: 60_000 });
    index.add(
      aRecord({ traceId: 'smartcar:bad', value: { undecodable: 'schema id 9 is not in the registry' } }),
    );
    const [trace] = await buildTraces(index, ['smartcar:bad'], async () => []);
    expect(trace!.canonical[0]!.value).toEqual({ undecodable: 'schema id 9 is not in the registry' });
    expect(trace!.webhooks).toEqual([]);
    expect(trace!.sessionChanges).toEqual([]);
  });
});
