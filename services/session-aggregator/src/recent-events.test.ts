import {
  FINGERPRINT_CHARS,
  fingerprintOf,
  hasFingerprint,
  isWindow,
  windowOf,
  withFingerprint,
} from './recent-events';
import { DEFAULT_REDUCER_SETTINGS, initialState, reduce, type Reading } from './session-reducer';
import { decodeState, encodeState, stateOf } from './state-codec';
import { decodeChangelogRecord, encodeChangelogValue } from './state-changelog';

const T0 = Date.parse('2025-09-01T10:00:00.000Z');
const vehicle = { vehicleId: 'smartcar:v1', provider: 'smartcar', userId: null };

function aReading(eventId: string, minute: number, fields: Partial<Reading> = {}): Reading {
  return {
    ...vehicle,
    eventId,
    occurredAt: T0 + minute * 60_000,
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

describe('event id fingerprints', () => {
  it('are 11 base64url characters, the same for the same id, whatever its length', () => {
    const fp = fingerprintOf('smartcar:9b7f3c1e-0f5e-4d0b-a7a2-2d4c6c1e8f10');
    expect(fp).toMatch(/^[A-Za-z0-9_-]{11}$/);
    expect(fingerprintOf('smartcar:9b7f3c1e-0f5e-4d0b-a7a2-2d4c6c1e8f10')).toBe(fp);
    expect(fingerprintOf('x'.repeat(100_000))).toHaveLength(FINGERPRINT_CHARS);
    expect(fingerprintOf('a')).not.toBe(fingerprintOf('b'));
  });

  it('keep the last `limit` of them, newest last', () => {
    let window = '';
    for (let i = 0; i < 70; i++) window = withFingerprint(window, fingerprintOf(`e${i}`), 64);
    expect(window).toHaveLength(64 * FINGERPRINT_CHARS);
    expect(window.slice(-FINGERPRINT_CHARS)).toBe(fingerprintOf('e69'));
    expect(window.slice(0, FINGERPRINT_CHARS)).toBe(fingerprintOf('e6'));
    expect(isWindow(window)).toBe(true);
  });

  it('match only whole fingerprints, never one that spans two', () => {
    const a = fingerprintOf('a');
    const b = fingerprintOf('b');
    const window = a + b;
    expect(hasFingerprint(window, a)).toBe(true);
    expect(hasFingerprint(window, b)).toBe(true);
    for (let shift = 1; shift < FINGERPRINT_CHARS; shift++) {
      expect(hasFingerprint(window, window.slice(shift, shift + FINGERPRINT_CHARS))).toBe(false);
    }
    // Also when the same characters occur misaligned before an aligned match.
    const spanning = window.slice(3, 3 + FINGERPRINT_CHARS);
    expect(hasFingerprint(window + spanning, spanning)).toBe(true);
  });

  it('refuse what is not a window', () => {
    expect(isWindow('')).toBe(true);
    expect(isWindow('abc')).toBe(false);
    expect(isWindow('a+/=bcdefgh')).toBe(false);
    expect(isWindow(['a'])).toBe(false);
  });
});

describe('the duplicate window', () => {
  it('is exact: each of the last 64 ids is a duplicate, the 65th most recent is news again', () => {
    let state = initialState(vehicle);
    const ids = Array.from({ length: 65 }, (_, i) => `smartcar:evt-${i}`);
    ids.forEach((id, i) => {
      const result = reduce(state, aReading(id, i), DEFAULT_REDUCER_SETTINGS);
      expect(result.outcome).toBe('applied');
      state = result.state;
    });
    // ids 1..64 are the last 64: all duplicates.
    for (const id of ids.slice(1)) {
      expect(reduce(state, aReading(id, 100), DEFAULT_REDUCER_SETTINGS).outcome).toBe('duplicate');
    }
    // id 0 fell out of the window: taken as news (here late, as it is older than the newest applied).
    expect(reduce(state, aReading(ids[0]!, 0), DEFAULT_REDUCER_SETTINGS).outcome).toBe('late');
    expect(reduce(state, aReading(ids[0]!, 200), DEFAULT_REDUCER_SETTINGS).outcome).toBe('applied');
  });

  it('keeps late readings in the window too', () => {
    const s1 = reduce(initialState(vehicle), aReading('n', 10), DEFAULT_REDUCER_SETTINGS).state;
    const late = reduce(s1, aReading('l', 5), DEFAULT_REDUCER_SETTINGS);
    expect(late.outcome).toBe('late');
    expect(reduce(late.state, aReading('l', 5), DEFAULT_REDUCER_SETTINGS).outcome).toBe('duplicate');
  });
});

describe('stored state encoding', () => {
  function anOpenState() {
    let state = initialState(vehicle);
    for (let i = 0; i < 70; i++) {
      state = reduce(
        state,
        aReading(`smartcar:${i}-9b7f3c1e-0f5e-4d0b-a7a2-2d4c6c1e8f10`, i, {
          isCharging: true,
          stateOfChargePercent: 30 + i / 2,
          chargePowerKw: 11,
          batteryCapacityKwh: 77,
          location: { latitude: 48.1, longitude: 11.5 },
        }),
      ).state;
    }
    return state;
  }

  it('round-trips, open and closed', () => {
    const open = anOpenState();
    expect(open.session).not.toBeNull();
    expect(decodeState(encodeState(open))).toEqual(open);
    const closed = { ...open, session: null };
    expect(decodeState(encodeState(closed))).toEqual(closed);
  });

  it('is about a quarter of the old format with 64 UUID event ids', () => {
    const state = anOpenState();
    const { recentEvents: _window, ...rest } = state;
    const ids = Array.from(
      { length: 64 },
      (_, i) => `smartcar:${i + 6}-9b7f3c1e-0f5e-4d0b-a7a2-2d4c6c1e8f10`,
    );
    const oldFormat = JSON.stringify({ ...rest, recentEventIds: ids });
    const size = Buffer.byteLength(encodeState(state));
    expect(size).toBeLessThan(1_300);
    expect(size * 2.5).toBeLessThan(Buffer.byteLength(oldFormat));
  });

  it('reads an old-format state (the ids themselves): the same ids are duplicates, in the same order', () => {
    const ids = ['smartcar:a', 'smartcar:b', 'smartcar:c'];
    const fresh = reduce(initialState(vehicle), aReading('smartcar:x', 0), DEFAULT_REDUCER_SETTINGS).state;
    const { recentEvents: _w, ...rest } = fresh;
    const old = { ...rest, recentEventIds: ids };
    const state = decodeState(JSON.stringify(old));
    expect(state.recentEvents).toBe(windowOf(ids));
    expect(state).not.toHaveProperty('recentEventIds');
    expect(state.lastAppliedAt).toBe(fresh.lastAppliedAt);
    for (const id of ids)
      expect(reduce(state, aReading(id, 1), DEFAULT_REDUCER_SETTINGS).outcome).toBe('duplicate');
    // 63 more ids push a and b out of a 64-wide window; c stays.
    let s = state;
    for (let i = 0; i < 63; i++) s = reduce(s, aReading(`n${i}`, 2 + i), DEFAULT_REDUCER_SETTINGS).state;
    expect(reduce(s, aReading('smartcar:b', 100), DEFAULT_REDUCER_SETTINGS).outcome).toBe('applied');
    expect(reduce(s, aReading('smartcar:c', 100), DEFAULT_REDUCER_SETTINGS).outcome).toBe('duplicate');
  });

  it('restores a version 1 changelog record, and writes version 2', () => {
    const fresh = reduce(initialState(vehicle), aReading('smartcar:x', 0), DEFAULT_REDUCER_SETTINGS).state;
    const { recentEvents: _w, ...rest } = fresh;
    const v1 = Buffer.from(
      JSON.stringify({
        v: 1,
        rev: 7,
        deadline: null,
        writtenAt: T0,
        state: { ...rest, recentEventIds: ['smartcar:x'] },
      }),
    );
    const entry = decodeChangelogRecord('smartcar:v1', v1);
    expect(entry).toEqual({ vehicleId: 'smartcar:v1', rev: 7, deadline: null, writtenAt: T0, state: fresh });
    const v2 = encodeChangelogValue(entry!);
    expect(JSON.parse(v2.toString())).toMatchObject({
      v: 2,
      rev: 7,
      state: { recentEvents: fresh.recentEvents },
    });
    expect(decodeChangelogRecord('smartcar:v1', v2)).toEqual(entry);
  });

  it('refuses a stored state of neither format', () => {
    expect(() => decodeState('{nope')).toThrow(/not JSON/);
    expect(() => decodeState(JSON.stringify({ vehicleId: 'smartcar:v1' }))).toThrow(/unknown shape/);
    expect(stateOf({ vehicleId: 'smartcar:v1', recentEvents: 'short' })).toBeNull();
    expect(stateOf({ vehicleId: 'smartcar:v1', recentEventIds: [1, 2] })).toBeNull();
    expect(stateOf(null)).toBeNull();
  });
});
