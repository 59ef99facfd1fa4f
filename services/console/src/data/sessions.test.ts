import type { ChargingSession, VehicleTelemetry } from '@ampflow/contracts';
import { changesCausedBy, createSessionStore, sessionSeries, sessionView } from './sessions';

const T0 = Date.parse('2026-12-01T10:00:00Z');

function aReading(n: number, overrides: Partial<VehicleTelemetry> = {}): VehicleTelemetry {
  return {
    eventId: `smartcar:e${n}`,
    vehicleId: 'smartcar:v1',
    occurredAt: T0 + n * 60_000,
    stateOfChargePercent: 40 + n,
    chargePowerKw: 11,
    ...overrides,
  } as VehicleTelemetry;
}

function aChange(overrides: Partial<ChargingSession> = {}): ChargingSession {
  return {
    sessionId: 's1',
    vehicleId: 'smartcar:v1',
    provider: 'smartcar',
    userId: null,
    change: 'STARTED',
    status: 'ACTIVE',
    startedAt: T0,
    endedAt: null,
    durationSeconds: null,
    socStartPercent: 40,
    socEndPercent: 40,
    energyAddedKwh: null,
    energySource: 'UNKNOWN',
    maxPowerKw: 11,
    location: { latitude: 52, longitude: 4 },
    endReason: null,
    eventCount: 1,
    version: 1,
    ...overrides,
  };
}

describe('session store', () => {
  it('keeps the latest version of each session and ignores a replayed older one', () => {
    const store = createSessionStore({ maxSessions: 10 });
    store.apply(aChange());
    store.apply(aChange({ change: 'ENDED', status: 'COMPLETED', version: 3, endedAt: T0 + 3_600_000 }));
    store.apply(aChange({ change: 'UPDATED', version: 2 }));
    expect(store.get('s1')?.version).toBe(3);
    expect(store.open()).toEqual([]);
  });

  it('lists a vehicle newest first, the open sessions of the fleet, and drops the oldest past the bound', () => {
    let evicted = 0;
    const store = createSessionStore({ maxSessions: 2, onEvict: () => evicted++ });
    store.apply(aChange({ sessionId: 'a', startedAt: T0 }));
    store.apply(aChange({ sessionId: 'b', startedAt: T0 + 10 }));
    store.apply(aChange({ sessionId: 'c', vehicleId: 'smartcar:v2', startedAt: T0 + 20 }));
    expect(evicted).toBe(1);
    expect(store.get('a')).toBeUndefined();
    expect(store.ofVehicle('smartcar:v1').map((s) => s.sessionId)).toEqual(['b']);
    expect(store.open().map((s) => s.sessionId)).toEqual(['c', 'b']);
  });

  it('shows a session without its location, with ISO times', () => {
    const view = sessionView(aChange({ endedAt: T0 + 60_000 }));
    expect(view).not.toHaveProperty('location');
    expect(view.startedAt).toBe('2026-12-01T10:00:00.000Z');
    expect(view.endedAt).toBe('2026-12-01T10:01:00.000Z');
  });
});

describe('sessionSeries', () => {
  it('takes the readings between start and end once each, in provider-time order', () => {
    const session = aChange({ startedAt: T0 + 60_000, endedAt: T0 + 180_000 });
    const readings = [aReading(3), aReading(0), aReading(1), aReading(2), aReading(2), aReading(4)];
    expect(sessionSeries(session, readings)).toEqual([
      { at: '2026-12-01T10:01:00.000Z', socPercent: 41, powerKw: 11 },
      { at: '2026-12-01T10:02:00.000Z', socPercent: 42, powerKw: 11 },
      { at: '2026-12-01T10:03:00.000Z', socPercent: 43, powerKw: 11 },
    ]);
  });

  it('runs an open session up to its newest reading and ignores other vehicles', () => {
    const series = sessionSeries(aChange(), [
      aReading(0),
      aReading(5),
      aReading(6, { vehicleId: 'smartcar:v2' }),
    ]);
    expect(series.map((p) => p.socPercent)).toEqual([40, 45]);
  });
});

describe('changesCausedBy', () => {
  const readings = [aReading(0), aReading(1), aReading(1), aReading(2), aReading(3)];
  const changes = [
    aChange(),
    aChange({ change: 'UPDATED', version: 2, eventCount: 2 }),
    aChange({ change: 'UPDATED', version: 3, eventCount: 3 }),
    aChange({
      change: 'ENDED',
      status: 'COMPLETED',
      version: 4,
      eventCount: 4,
      endedAt: T0 + 180_000,
      endReason: 'UNPLUGGED',
    }),
  ];
  const versions = (reading: VehicleTelemetry) =>
    changesCausedBy(reading, readings, changes).map((c) => [c.change.version, c.attribution]);

  it('ties STARTED by start time, UPDATED by the replayed reading count, ENDED by end time', () => {
    expect(versions(aReading(0))).toEqual([[1, 'started_at']]);
    expect(versions(aReading(1))).toEqual([[2, 'reading_count']]);
    expect(versions(aReading(2))).toEqual([[3, 'reading_count']]);
    expect(versions(aReading(3))).toEqual([[4, 'ended_at']]);
  });

  it('ties nothing to a reading the reducer skipped as late', () => {
    const late = aReading(1, { eventId: 'smartcar:late', occurredAt: T0 + 30_000 });
    const withLate = [aReading(0), aReading(1), late, aReading(2)];
    expect(changesCausedBy(late, withLate, changes)).toEqual([]);
    expect(changesCausedBy(aReading(2), withLate, changes).map((c) => c.change.version)).toEqual([3]);
  });

  it('ties no UPDATED when the session start is no longer in the index, and no inactivity end', () => {
    expect(changesCausedBy(aReading(2), readings.slice(1), changes)).toEqual([]);
    const timeout = aChange({ change: 'ENDED', endReason: 'INACTIVITY_TIMEOUT', endedAt: T0, version: 2 });
    expect(changesCausedBy(aReading(0), readings, [timeout])).toEqual([]);
  });
});
