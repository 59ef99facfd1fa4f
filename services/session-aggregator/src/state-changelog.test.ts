import { ValidationError } from '@ampflow/runtime';
import { initialState, reduce, type VehicleSessionState } from './session-reducer';
import {
  changelogTopicOf,
  decodeChangelogRecord,
  encodeChangelogValue,
  latestPerVehicle,
  restoreWriteOf,
  type ChangelogEntry,
} from './state-changelog';

const T0 = Date.parse('2025-09-01T10:00:00.000Z');
const DAY_S = 24 * 3600;

/** A vehicle state with an open session, as the reducer makes it. */
function anOpenState(vehicleId = 'smartcar:v1'): VehicleSessionState {
  const base = { vehicleId, provider: 'smartcar', userId: null };
  return reduce(initialState(base), {
    ...base,
    eventId: 'e-1',
    occurredAt: T0,
    isCharging: true,
    isPluggedIn: true,
    chargingState: null,
    stateOfChargePercent: 40,
    chargePowerKw: 11,
    energyAddedKwh: null,
    batteryCapacityKwh: 60,
    location: null,
  }).state;
}

function anEntry(fields: Partial<ChangelogEntry> = {}): ChangelogEntry {
  const state = fields.state ?? anOpenState(fields.vehicleId);
  return { vehicleId: state.vehicleId, rev: 3, state, deadline: T0 + 6 * 3600_000, writtenAt: T0, ...fields };
}

describe('changelog record encoding', () => {
  it('decodes what it encodes, open and closed states alike', () => {
    const open = anEntry();
    expect(decodeChangelogRecord(Buffer.from(open.vehicleId), encodeChangelogValue(open))).toEqual(open);
    const closed = anEntry({ state: { ...anOpenState(), session: null }, deadline: null });
    expect(decodeChangelogRecord(closed.vehicleId, encodeChangelogValue(closed))).toEqual(closed);
  });

  it('reads a tombstone as nothing kept', () => {
    expect(decodeChangelogRecord(Buffer.from('smartcar:v1'), null)).toBeNull();
  });

  it.each([
    ['no key', null, encodeChangelogValue(anEntry())],
    ['not JSON', 'smartcar:v1', Buffer.from('{nope')],
    [
      'another format version',
      'smartcar:v1',
      Buffer.from(JSON.stringify({ v: 3, rev: 1, writtenAt: 1, deadline: null, state: anOpenState() })),
    ],
    ['a key that is not the state’s vehicle', 'smartcar:other', encodeChangelogValue(anEntry())],
    [
      'a deadline that is not a number',
      'smartcar:v1',
      Buffer.from(JSON.stringify({ v: 1, rev: 1, writtenAt: 1, deadline: 'soon', state: anOpenState() })),
    ],
    [
      'a state without recent event ids',
      'smartcar:v1',
      Buffer.from(
        JSON.stringify({ v: 1, rev: 1, writtenAt: 1, deadline: null, state: { vehicleId: 'smartcar:v1' } }),
      ),
    ],
  ])('refuses a record with %s', (_why, key, value) => {
    expect(() => decodeChangelogRecord(key, value)).toThrow(ValidationError);
  });
});

describe('changelog topic name', () => {
  it('belongs to the consumer group, as a Kafka Streams changelog to its application id', () => {
    expect(changelogTopicOf('ampflow-session-aggregator')).toBe('ampflow-session-aggregator-state-changelog');
  });
});

describe('restore writes', () => {
  it('restores the state, its revision and deadline with the TTL it had left', () => {
    const entry = anEntry();
    expect(restoreWriteOf(entry.vehicleId, entry, T0 + 3_600_000, 30 * DAY_S)).toEqual({
      vehicleId: entry.vehicleId,
      rev: 3,
      state: entry.state,
      deadline: entry.deadline,
      ttlSeconds: 30 * DAY_S - 3600,
    });
  });

  it('deletes for a tombstone and for a state Redis would have expired', () => {
    expect(restoreWriteOf('smartcar:v1', null, T0, DAY_S)).toEqual({ vehicleId: 'smartcar:v1', state: null });
    const old = anEntry({ writtenAt: T0 - DAY_S * 1000 });
    expect(restoreWriteOf(old.vehicleId, old, T0, DAY_S)).toEqual({ vehicleId: old.vehicleId, state: null });
  });

  it('keeps the last record of each vehicle, in the order of those last records', () => {
    const a1 = { vehicleId: 'a', n: 1 };
    const b1 = { vehicleId: 'b', n: 2 };
    const a2 = { vehicleId: 'a', n: 3 };
    const c1 = { vehicleId: 'c', n: 4 };
    expect(latestPerVehicle([a1, b1, a2, c1])).toEqual([b1, a2, c1]);
    expect(latestPerVehicle([])).toEqual([]);
  });
});
