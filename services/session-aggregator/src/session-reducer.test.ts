import type { ChargingSession } from '@ampflow/contracts';
import {
  DEFAULT_REDUCER_SETTINGS,
  expire,
  initialState,
  reduce,
  sessionIdOf,
  type Reading,
  type ReducerSettings,
  type VehicleSessionState,
} from './session-reducer';

const T0 = Date.parse('2025-08-05T03:00:00.000Z');
const MIN = 60_000;
let seq = 0;

/** A reading builder: nothing known unless given. */
function aReading(minutes: number, fields: Partial<Reading> = {}): Reading {
  seq += 1;
  return {
    eventId: `e-${seq}`,
    provider: 'smartcar',
    vehicleId: 'smartcar:v1',
    userId: 'smartcar:u1',
    occurredAt: T0 + minutes * MIN,
    isCharging: null,
    isPluggedIn: null,
    chargingState: null,
    stateOfChargePercent: null,
    chargePowerKw: null,
    energyAddedKwh: null,
    batteryCapacityKwh: null,
    location: null,
    ...fields,
  };
}

function run(readings: Reading[], settings: ReducerSettings = DEFAULT_REDUCER_SETTINGS) {
  let state: VehicleSessionState = initialState(readings[0]!);
  const changes: ChargingSession[] = [];
  const outcomes: string[] = [];
  for (const reading of readings) {
    const result = reduce(state, reading, settings);
    state = result.state;
    changes.push(...result.changes);
    outcomes.push(result.outcome);
  }
  return { state, changes, outcomes };
}

const summary = (c: ChargingSession) => [c.change, c.version, c.endReason ?? '-'];

describe('session reducer', () => {
  it('a normal session: STARTED, UPDATED per reading, ENDED on not charging, with SOC, power and reported energy', () => {
    const location = { latitude: 52.1, longitude: 4.3 };
    const { changes, state } = run([
      aReading(0, {
        isCharging: true,
        isPluggedIn: true,
        stateOfChargePercent: 40,
        chargePowerKw: 7,
        energyAddedKwh: 0,
        location,
      }),
      aReading(30, { isCharging: true, stateOfChargePercent: 55, chargePowerKw: 11, energyAddedKwh: 11.2 }),
      aReading(60, { isCharging: false, stateOfChargePercent: 70, chargePowerKw: 0, energyAddedKwh: 22.5 }),
    ]);
    expect(changes.map(summary)).toEqual([
      ['STARTED', 1, '-'],
      ['UPDATED', 2, '-'],
      ['ENDED', 3, 'CHARGING_STOPPED'],
    ]);
    expect(changes[2]).toEqual<ChargingSession>({
      sessionId: sessionIdOf('smartcar:v1', T0),
      vehicleId: 'smartcar:v1',
      provider: 'smartcar',
      userId: 'smartcar:u1',
      change: 'ENDED',
      status: 'COMPLETED',
      startedAt: T0,
      endedAt: T0 + 60 * MIN,
      durationSeconds: 3600,
      socStartPercent: 40,
      socEndPercent: 70,
      energyAddedKwh: 22.5,
      energySource: 'REPORTED',
      maxPowerKw: 11,
      location,
      endReason: 'CHARGING_STOPPED',
      eventCount: 3,
      version: 3,
    });
    expect(new Set(changes.map((c) => c.sessionId)).size).toBe(1);
    expect(state.session).toBeNull();
  });

  it('estimates energy from the SOC delta and the battery capacity when no counter is reported', () => {
    const { changes } = run([
      aReading(0, { isCharging: true, stateOfChargePercent: 20, batteryCapacityKwh: 75 }),
      aReading(45, { isCharging: false, stateOfChargePercent: 60 }),
    ]);
    expect(changes.at(-1)).toMatchObject({ energySource: 'ESTIMATED_FROM_SOC', energyAddedKwh: 30 });
  });

  it('without SOC or counter the energy is UNKNOWN, and the session still starts and ends', () => {
    const { changes } = run([aReading(0, { isCharging: true }), aReading(10, { isCharging: false })]);
    expect(changes.map(summary)).toEqual([
      ['STARTED', 1, '-'],
      ['ENDED', 2, 'CHARGING_STOPPED'],
    ]);
    expect(changes[1]).toMatchObject({
      energySource: 'UNKNOWN',
      energyAddedKwh: null,
      socStartPercent: null,
    });
  });

  it('ends with UNPLUGGED when the cable is removed without a stop', () => {
    const { changes } = run([
      aReading(0, { isCharging: true, isPluggedIn: true }),
      aReading(20, { isPluggedIn: false }),
    ]);
    expect(changes.map(summary)).toEqual([
      ['STARTED', 1, '-'],
      ['ENDED', 2, 'UNPLUGGED'],
    ]);
  });

  it('ends with FULLY_CHARGED on the detailed status', () => {
    const { changes } = run([
      aReading(0, { chargingState: 'CHARGING' }),
      aReading(90, { chargingState: 'FULLY_CHARGED', isCharging: false, stateOfChargePercent: 100 }),
    ]);
    expect(changes.at(-1)).toMatchObject({ change: 'ENDED', endReason: 'FULLY_CHARGED', socEndPercent: 100 });
  });

  it('ignores a duplicate reading entirely', () => {
    const start = aReading(0, { isCharging: true });
    const first = run([start]);
    const again = reduce(first.state, start);
    expect(again).toEqual({ state: first.state, changes: [], outcome: 'duplicate' });
  });

  it('does not let a reading older than the last applied one flip the state, and counts it late', () => {
    const stop = aReading(30, { isCharging: false });
    const { changes, outcomes, state } = run([
      aReading(0, { isCharging: true }),
      aReading(20, { isCharging: true }),
      stop,
      aReading(25, { isCharging: true }), // delivered after the stop, but older
    ]);
    expect(outcomes).toEqual(['applied', 'applied', 'applied', 'late']);
    expect(changes.map(summary)).toEqual([
      ['STARTED', 1, '-'],
      ['UPDATED', 2, '-'],
      ['ENDED', 3, 'CHARGING_STOPPED'],
    ]);
    expect(state.session).toBeNull();
  });

  it('a late reading across a session boundary neither reopens the old session nor starts one', () => {
    const { changes, outcomes } = run([
      aReading(0, { isCharging: true }),
      aReading(10, { isCharging: false }),
      aReading(100, { isCharging: true }),
      aReading(5, { isCharging: false }), // belongs to the first session, arrives during the second
      aReading(110, { isCharging: true }),
    ]);
    expect(outcomes[3]).toBe('late');
    expect(changes.map((c) => [c.change, c.startedAt])).toEqual([
      ['STARTED', T0],
      ['ENDED', T0],
      ['STARTED', T0 + 100 * MIN],
      ['UPDATED', T0 + 100 * MIN],
    ]);
  });

  it('ends a session after the inactivity timeout at its last reading, before the next reading starts a new one', () => {
    const { changes } = run([
      aReading(0, { isCharging: true }),
      aReading(30, { isCharging: true }),
      aReading(30 + 6 * 60 + 1, { isCharging: true }),
    ]);
    expect(changes.map((c) => [c.change, c.endReason, c.startedAt, c.endedAt])).toEqual([
      ['STARTED', null, T0, null],
      ['UPDATED', null, T0, null],
      ['ENDED', 'INACTIVITY_TIMEOUT', T0, T0 + 30 * MIN],
      ['STARTED', null, T0 + 391 * MIN, null],
    ]);
  });

  it('expire() fires the timeout without new input, once', () => {
    const { state } = run([aReading(0, { isCharging: true })]);
    expect(expire(state, T0 + 6 * 60 * MIN).changes).toEqual([]);
    const fired = expire(state, T0 + 6 * 60 * MIN + 1);
    expect(fired.changes.map(summary)).toEqual([['ENDED', 2, 'INACTIVITY_TIMEOUT']]);
    expect(fired.changes[0]).toMatchObject({ endedAt: T0, durationSeconds: 0 });
    expect(expire(fired.state, T0 + 7 * 60 * MIN).changes).toEqual([]);
  });

  it('Telematica: charging, plug and SOC as separate events make one session', () => {
    const t = (minutes: number, fields: Partial<Reading>) =>
      aReading(minutes, { provider: 'telematica', vehicleId: 'telematica:v9', userId: null, ...fields });
    const { changes } = run([
      t(0, { isPluggedIn: true, isCharging: false, stateOfChargePercent: 30 }), // plug-status: plugged, not yet charging
      t(1, { isCharging: true, chargingState: 'CHARGING', isPluggedIn: true, stateOfChargePercent: 30 }), // charging-status
      t(40, { stateOfChargePercent: 62, isCharging: true, isPluggedIn: true }), // vehicle.soc
      t(50, { isPluggedIn: false, isCharging: false, stateOfChargePercent: 66 }), // plug-status: unplugged
    ]);
    expect(changes.map(summary)).toEqual([
      ['STARTED', 1, '-'],
      ['UPDATED', 2, '-'],
      ['ENDED', 3, 'UNPLUGGED'],
    ]);
    expect(changes[2]).toMatchObject({
      vehicleId: 'telematica:v9',
      socStartPercent: 30,
      socEndPercent: 66,
      eventCount: 3,
    });
  });

  it('rate-limits UPDATED changes per session without losing what they carried', () => {
    const settings = { ...DEFAULT_REDUCER_SETTINGS, updateMinIntervalMs: 10 * MIN };
    const { changes } = run(
      [
        aReading(0, { isCharging: true, chargePowerKw: 7 }),
        aReading(2, { isCharging: true, chargePowerKw: 22 }),
        aReading(4, { isCharging: true, chargePowerKw: 9 }),
        aReading(12, { isCharging: true, chargePowerKw: 8 }),
        aReading(13, { isCharging: false }),
      ],
      settings,
    );
    expect(changes.map(summary)).toEqual([
      ['STARTED', 1, '-'],
      ['UPDATED', 2, '-'],
      ['ENDED', 3, 'CHARGING_STOPPED'],
    ]);
    expect(changes[1]).toMatchObject({ eventCount: 4, maxPowerKw: 22 });
    expect(changes[2]).toMatchObject({ eventCount: 5, maxPowerKw: 22 });
  });

  it('is deterministic: the same readings give the same sessions and ids', () => {
    const readings = [aReading(0, { isCharging: true }), aReading(10, { isCharging: false })];
    expect(run(readings).changes).toEqual(run(readings).changes);
  });
});
