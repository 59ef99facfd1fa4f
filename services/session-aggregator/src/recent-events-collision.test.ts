import { DEFAULT_REDUCER_SETTINGS, initialState, reduce, type Reading } from './session-reducer';

// Fingerprints with a forced collision: every id starting with `collides-` gets the same one. A real 66-bit
// collision within a window of 64 happens about once in 10^18 readings; this shows what it then does.
jest.mock('./recent-events', () => {
  const actual = jest.requireActual<typeof import('./recent-events')>('./recent-events');
  return {
    ...actual,
    fingerprintOf: (id: string) => (id.startsWith('collides-') ? 'AAAAAAAAAAA' : actual.fingerprintOf(id)),
  };
});

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

describe('a fingerprint collision', () => {
  it('makes the new reading a duplicate: counted as one, nothing changes (as documented)', () => {
    const first = reduce(initialState(vehicle), aReading('collides-1', 0), DEFAULT_REDUCER_SETTINGS);
    expect(first.outcome).toBe('applied');
    const second = reduce(
      first.state,
      aReading('collides-2', 1, { isCharging: true }),
      DEFAULT_REDUCER_SETTINGS,
    );
    expect(second.outcome).toBe('duplicate');
    expect(second.changes).toEqual([]);
    expect(second.state).toBe(first.state);
    // Other ids are unaffected.
    expect(reduce(first.state, aReading('other', 1), DEFAULT_REDUCER_SETTINGS).outcome).toBe('applied');
  });
});
