import Redis from 'ioredis';
import { testEndpoints, uniqueName } from '@ampflow/testing';
import { windowOf } from '../src/recent-events';
import { createRedisSessionStore, type StateWrite } from '../src/redis-session-store';
import { DEFAULT_REDUCER_SETTINGS, initialState, reduce } from '../src/session-reducer';
import { encodeState } from '../src/state-codec';

/**
 * The store's scripts over a whole chunk against the real Redis (the shared one, under a namespace of the test's
 * own; nothing is flushed): one load and one save per chunk, compare-and-set per vehicle, the marker checked
 * for the whole chunk, and states in the format written before fingerprints still read.
 */
const T0 = Date.parse('2025-09-01T10:00:00.000Z');
const redis = new Redis(testEndpoints().redisUrl, { lazyConnect: true, enableAutoPipelining: true });
const namespace = uniqueName('store');
const store = createRedisSessionStore(redis, { namespace, stateTtlSeconds: 3_600 });

afterAll(async () => {
  const keys = await redis.keys(`${namespace}:*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

function aState(vehicleId: string, charging: boolean) {
  const base = { vehicleId, provider: 'smartcar', userId: null };
  return reduce(
    initialState(base),
    {
      ...base,
      eventId: `${vehicleId}:e1`,
      occurredAt: T0,
      isCharging: charging,
      isPluggedIn: true,
      chargingState: null,
      stateOfChargePercent: 40,
      chargePowerKw: 11,
      energyAddedKwh: null,
      batteryCapacityKwh: 60,
      location: null,
    },
    DEFAULT_REDUCER_SETTINGS,
  ).state;
}

describe('the Redis session store', () => {
  it('saves a chunk in one script: per-vehicle compare-and-set, deadlines, and nothing after a reset', async () => {
    const epoch = uniqueName('epoch');
    await redis.set(`${namespace}:restored`, epoch);
    const ids = Array.from({ length: 300 }, (_, i) => `smartcar:${namespace}-v${i}`);
    const writes: StateWrite[] = ids.map((id, i) => {
      const state = aState(id, i % 2 === 0);
      return { vehicleId: id, expectedRev: 0, state, deadline: state.session ? T0 + i : null };
    });
    expect(await store.save(epoch, writes)).toEqual({ lost: [], reset: false });

    const loaded = await store.load([...ids, `smartcar:${namespace}-none`]);
    expect(loaded.epoch).toBe(epoch);
    expect(loaded.states.size).toBe(300);
    for (const w of writes) expect(loaded.states.get(w.vehicleId)).toEqual({ rev: 1, state: w.state });
    expect(await store.deadline(ids[0]!)).toBe(T0);
    expect(await store.deadline(ids[1]!)).toBeNull();

    // Vehicle 0 at its current revision; vehicle 1 from a stale one: only vehicle 1 is lost.
    const again = [
      { ...writes[0]!, expectedRev: 1, state: { ...writes[0]!.state, session: null }, deadline: null },
      { ...writes[1]!, expectedRev: 0 },
    ];
    expect(await store.save(epoch, again)).toEqual({ lost: [ids[1]], reset: false });
    expect((await store.load([ids[0]!])).states.get(ids[0]!)?.rev).toBe(2);
    expect(await store.deadline(ids[0]!)).toBeNull();

    // Under another epoch (Redis reset and restored since the load): nothing written.
    expect(await store.save('an-old-epoch', [{ ...writes[2]!, expectedRev: 1 }])).toEqual({
      lost: [],
      reset: true,
    });
    expect((await store.load([ids[2]!])).states.get(ids[2]!)?.rev).toBe(1);
    expect(await store.save(epoch, [])).toEqual({ lost: [], reset: false });
  });

  it('reads a state in the format written before fingerprints', async () => {
    const id = `smartcar:${namespace}-old`;
    const state = aState(id, true);
    const { recentEvents: _w, ...rest } = state;
    const eventIds = [`${id}:e0`, `${id}:e1`];
    await redis.hset(
      `${namespace}:vehicle:${id}`,
      'rev',
      '4',
      'state',
      JSON.stringify({ ...rest, recentEventIds: eventIds }),
    );
    const loaded = await store.load([id]);
    expect(loaded.states.get(id)).toEqual({ rev: 4, state: { ...state, recentEvents: windowOf(eventIds) } });
    // Saved back in the new format.
    const upgraded = loaded.states.get(id)!.state;
    const epoch = (await store.epoch())!;
    expect(
      await store.save(epoch, [{ vehicleId: id, expectedRev: 4, state: upgraded, deadline: null }]),
    ).toEqual({ lost: [], reset: false });
    expect(await redis.hget(`${namespace}:vehicle:${id}`, 'state')).toBe(encodeState(upgraded));
  });
});
