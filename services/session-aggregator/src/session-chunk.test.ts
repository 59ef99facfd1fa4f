import { Registry } from 'prom-client';
import type { ChargingSession, VehicleTelemetry } from '@ampflow/contracts';
import type { ConsumedRecord, OutputRecord } from '@ampflow/kafka';
import { DependencyError } from '@ampflow/runtime';
import { createAggregatorMetrics } from './metrics';
import { DEFAULT_REDUCER_SETTINGS } from './session-reducer';
import { CACHED_CHUNK_RECORDS, createSessionChunkHandler } from './session-chunk';
import { createStateCache } from './state-cache';
import { fingerprintOf, hasFingerprint } from './recent-events';
import { aFakeCodec, aFakeStore, aReading } from '../test/in-memory-fakes';

const NOW = Date.parse('2025-08-06T00:00:00.000Z');
const topics = { sessions: 'sessions', changelog: 'changelog' };

function aRecord(offset: number, value: Buffer, partition = 0): ConsumedRecord {
  return {
    topic: 'telemetry',
    partition,
    message: { key: null, value, headers: {}, offset: String(offset), timestamp: '0', attributes: 0 },
  };
}

function setup(
  options: {
    epoch?: string | null;
    changelogLimitBytes?: number;
    sessionsLimitBytes?: number;
    cache?: boolean;
    now?: () => number;
  } = {},
) {
  const codec = aFakeCodec();
  const store = aFakeStore(options);
  /** The vehicles of each load, in order. */
  const loads: string[][] = [];
  const load = store.load;
  store.load = async (ids) => {
    loads.push([...ids]);
    return load(ids);
  };
  const registry = new Registry();
  const resets: string[] = [];
  /** The changelog records sent (by `afterSend`, after the changes), in order. */
  const sent: OutputRecord[] = [];
  const producer = {
    send: async (topic: string, messages: OutputRecord['message'][]) => {
      expect(topic).toBe('changelog');
      for (const message of messages) sent.push({ topic, message });
    },
    messageSizeLimit: async (topic: string) => {
      if (topic === 'changelog') return options.changelogLimitBytes ?? 1_000_000;
      expect(topic).toBe('sessions');
      return options.sessionsLimitBytes ?? 1_000_000;
    },
  };
  const cache = options.cache
    ? createStateCache({ maxEntries: 100, maxAgeMs: 600_000, deadlineMarginMs: 60_000 })
    : undefined;
  const handle = createSessionChunkHandler({
    codec,
    store,
    producer,
    settings: DEFAULT_REDUCER_SETTINGS,
    topics,
    now: options.now ?? (() => NOW),
    metrics: createAggregatorMetrics(registry, async () => 0),
    stateReset: (where) => {
      resets.push(where);
      return new DependencyError('state_reset', `reset at ${where}`);
    },
    cache,
  });
  let nextOffset = 0;
  /** A chunk of partition 0 at `from` (default: right after the previous chunk). */
  const chunk = (readings: Array<VehicleTelemetry | Buffer>, from = nextOffset) => {
    nextOffset = from + readings.length;
    return handle(readings.map((r, i) => aRecord(from + i, Buffer.isBuffer(r) ? r : codec.wire(r))));
  };
  return { codec, store, registry, resets, chunk, loads, cache, sent };
}

/** The changelog records of an outcome: vehicle, revision, and whether its session is open. */
const changelogIn = (outputs: OutputRecord[]) =>
  outputs
    .filter((o) => o.topic === 'changelog')
    .map((o) => {
      const v = JSON.parse(String(o.message.value)) as { rev: number; state: { session: unknown } };
      return [o.message.key, v.rev, v.state.session !== null];
    });

const changesIn = (outputs: OutputRecord[]) =>
  outputs
    .filter((o) => o.topic === 'sessions')
    .map((o) => JSON.parse(String(o.message.value)) as ChargingSession)
    .map((s) => [s.vehicleId, s.change, s.endReason ?? null]);

describe('the session chunk handler', () => {
  it('applies each vehicle its readings in order; outputs the changes; after they are sent, the new states to the changelog, then Redis', async () => {
    const { chunk, store, registry, sent } = setup();
    const outcome = await chunk([
      aReading('smartcar:a', 8, { isCharging: true, stateOfChargePercent: 30 }),
      aReading('smartcar:b', 9, { isCharging: true }),
      aReading('smartcar:a', 9, { isCharging: false, stateOfChargePercent: 60 }),
    ]);

    expect(changesIn(outcome.outputs)).toEqual([
      ['smartcar:a', 'STARTED', null],
      ['smartcar:a', 'ENDED', 'CHARGING_STOPPED'],
      ['smartcar:b', 'STARTED', null],
    ]);
    // The outputs are the changes only: a changelog state never goes out before the changes it implies.
    expect(outcome.outputs.map((o) => o.topic)).toEqual(['sessions', 'sessions', 'sessions']);
    expect(outcome.deadLetters).toEqual([]);
    // Nothing goes to the changelog or the store until the outputs are acknowledged.
    expect(sent).toEqual([]);
    expect(store.states.size).toBe(0);

    await outcome.afterSend!();
    expect(changelogIn(sent)).toEqual([
      ['smartcar:a', 1, false],
      ['smartcar:b', 1, true],
    ]);
    expect(store.states.get('smartcar:a')).toMatchObject({ rev: 1, state: { session: null } });
    expect(store.states.get('smartcar:b')).toMatchObject({ rev: 1, state: { session: { version: 1 } } });
    expect(store.deadlines.get('smartcar:b')).toBe(NOW + DEFAULT_REDUCER_SETTINGS.inactivityTimeoutMs);
    expect(store.deadlines.get('smartcar:a')).toBeNull();
    expect(await registry.getSingleMetricAsString('session_aggregator_sessions_started_total')).toMatch(
      / 2$/m,
    );
  });

  it('goes on from the stored state and revision', async () => {
    const { chunk, store } = setup();
    await (
      await chunk([aReading('smartcar:a', 8, { isCharging: true })])
    ).afterSend!();
    const outcome = await chunk([aReading('smartcar:a', 10, { isPluggedIn: false })]);
    expect(changesIn(outcome.outputs)).toEqual([['smartcar:a', 'ENDED', 'UNPLUGGED']]);
    await outcome.afterSend!();
    expect(store.states.get('smartcar:a')?.rev).toBe(2);
  });

  it('dead-letters a record that cannot be decoded, by its index, and applies the others', async () => {
    const { chunk } = setup();
    const outcome = await chunk([
      Buffer.from('not wire format'),
      aReading('smartcar:a', 8, { isCharging: true }),
    ]);
    expect(outcome.deadLetters).toEqual([{ index: 0, error: expect.objectContaining({ code: 'bad_avro' }) }]);
    expect(changesIn(outcome.outputs)).toEqual([['smartcar:a', 'STARTED', null]]);
  });

  it('neither loads nor saves for a chunk of which nothing could be decoded', async () => {
    const { chunk, store, loads } = setup();
    store.save = async () => {
      throw new Error('no save expected');
    };
    const outcome = await chunk([Buffer.from('not wire format')]);
    expect(outcome.deadLetters).toHaveLength(1);
    await outcome.afterSend!();
    expect(loads).toEqual([]);
  });

  it('throws when the registry does not answer, so the chunk is retried', async () => {
    const { chunk, codec } = setup();
    codec.decodeFailure = new DependencyError('registry_unavailable', 'away');
    await expect(chunk([aReading('smartcar:a', 8, { isCharging: true })])).rejects.toBe(codec.decodeFailure);
  });

  it('dead-letters a reading whose session change cannot be encoded, without applying it, and keeps going', async () => {
    const { chunk, store } = setup();
    const poison = aReading('smartcar:a', 8, { isCharging: true });
    poison.occurredAt += 0.5; // a start time that is no Avro long
    const outcome = await chunk([
      poison,
      aReading('smartcar:a', 9, { isCharging: true, stateOfChargePercent: 40 }),
    ]);

    expect(outcome.deadLetters).toEqual([
      { index: 0, error: expect.objectContaining({ code: 'encode_failed' }) },
    ]);
    expect(changesIn(outcome.outputs)).toEqual([['smartcar:a', 'STARTED', null]]);
    await outcome.afterSend!();
    const session = store.states.get('smartcar:a')?.state.session;
    expect(session?.startedAt).toBe(poison.occurredAt - 0.5 + 3600_000);
  });

  it('dead-letters a reading after which the state would be too large for the changelog, without applying it', async () => {
    const { chunk, store, sent } = setup({ changelogLimitBytes: 4_000 });
    // A 5,000-character user id is kept in the state (event ids are not: only their fingerprints are).
    const huge = aReading('smartcar:a', 8, { isCharging: true, userId: `smartcar:${'x'.repeat(5_000)}` });
    const next = aReading('smartcar:a', 9, { isCharging: true, userId: 'smartcar:u1' });
    const outcome = await chunk([huge, next]);

    expect(outcome.deadLetters).toEqual([
      { index: 0, error: expect.objectContaining({ code: 'record_too_large' }) },
    ]);
    expect(changesIn(outcome.outputs)).toEqual([['smartcar:a', 'STARTED', null]]);
    await outcome.afterSend!();
    expect(changelogIn(sent)).toEqual([['smartcar:a', 1, true]]);
    const state = store.states.get('smartcar:a')?.state;
    expect(hasFingerprint(state!.recentEvents, fingerprintOf(huge.eventId))).toBe(false);
    expect(hasFingerprint(state!.recentEvents, fingerprintOf(next.eventId))).toBe(true);
    expect(state?.userId).toBe('smartcar:u1');
    expect(state?.session?.startedAt).toBe(huge.occurredAt + 3600_000);
  });

  it('dead-letters a reading whose session change would be too large for the sessions topic, without applying it', async () => {
    const { chunk, store, sent } = setup({ sessionsLimitBytes: 2_000 });
    await (
      await chunk([aReading('smartcar:a', 8, { isPluggedIn: true })])
    ).afterSend!();
    const huge = aReading('smartcar:a', 9, { isCharging: true, userId: `smartcar:${'x'.repeat(3_000)}` });
    const outcome = await chunk([huge]);

    expect(outcome.deadLetters).toEqual([
      { index: 0, error: expect.objectContaining({ code: 'record_too_large' }) },
    ]);
    expect(changesIn(outcome.outputs)).toEqual([]);
    sent.length = 0;
    await outcome.afterSend!();
    // Nothing applied: no new state for the changelog, none for Redis.
    expect(changelogIn(sent)).toEqual([]);
    const state = store.states.get('smartcar:a')!;
    expect(state.rev).toBe(1);
    expect(hasFingerprint(state.state.recentEvents, fingerprintOf(huge.eventId))).toBe(false);
  });

  it('does not grow the state with the length of event ids', async () => {
    const { chunk, store } = setup({ changelogLimitBytes: 4_000 });
    const long = aReading('smartcar:a', 8, { isCharging: true, eventId: `smartcar:${'x'.repeat(20_000)}` });
    const outcome = await chunk([long]);

    expect(outcome.deadLetters).toEqual([]);
    await outcome.afterSend!();
    const state = store.states.get('smartcar:a')!.state;
    expect(hasFingerprint(state.recentEvents, fingerprintOf(long.eventId))).toBe(true);
    // The redelivery is still a duplicate.
    const again = await chunk([long]);
    expect(changesIn(again.outputs)).toEqual([]);
  });

  it('writes nothing for a vehicle whose readings were all duplicates', async () => {
    const { chunk, store } = setup();
    const reading = aReading('smartcar:a', 8, { isCharging: true });
    await (
      await chunk([reading])
    ).afterSend!();
    const outcome = await chunk([{ ...reading }]);
    expect(outcome.outputs).toEqual([]);
    await outcome.afterSend!();
    expect(store.states.get('smartcar:a')?.rev).toBe(1);
  });

  describe('with the state cache', () => {
    it('takes the states it saved instead of loading them while the chunks follow each other', async () => {
      const { chunk, store, loads } = setup({ cache: true });
      await (
        await chunk([aReading('smartcar:a', 8, { isPluggedIn: true }), aReading('smartcar:b', 8, {})])
      ).afterSend!();
      expect(loads).toEqual([['smartcar:a', 'smartcar:b']]);

      const next = await chunk([aReading('smartcar:a', 9, { isCharging: true })]);
      expect(changesIn(next.outputs)).toEqual([['smartcar:a', 'STARTED', null]]);
      await next.afterSend!();
      expect(loads).toHaveLength(1);
      expect(store.states.get('smartcar:a')?.rev).toBe(2);

      // Only the vehicle it does not hold is loaded.
      await (
        await chunk([aReading('smartcar:b', 9, {}), aReading('smartcar:c', 9, {})])
      ).afterSend!();
      expect(loads).toEqual([['smartcar:a', 'smartcar:b'], ['smartcar:c']]);
    });

    it('loads when the chunk does not continue where the last saved one ended', async () => {
      const { chunk, loads } = setup({ cache: true });
      await (
        await chunk([aReading('smartcar:a', 8, {})], 10)
      ).afterSend!();
      await (
        await chunk([aReading('smartcar:a', 9, {})], 20)
      ).afterSend!();
      // And a chunk that was handled but never saved (its send failed) leaves the cache where it was.
      await chunk([aReading('smartcar:a', 10, {})], 21);
      await (
        await chunk([aReading('smartcar:a', 10, {})], 21)
      ).afterSend!();
      expect(loads).toEqual([['smartcar:a'], ['smartcar:a']]);
    });

    it('loads a vehicle whose open session is due soon (the sweeper may end it)', async () => {
      let now = NOW;
      const { chunk, loads } = setup({ cache: true, now: () => now });
      await (
        await chunk([aReading('smartcar:a', 8, { isCharging: true })])
      ).afterSend!();
      now += DEFAULT_REDUCER_SETTINGS.inactivityTimeoutMs - 30_000;
      await (
        await chunk([aReading('smartcar:a', 9, { isCharging: true })])
      ).afterSend!();
      expect(loads).toHaveLength(2);
    });

    it('never writes a cached state stale by another writer: the save is refused and the cache forgotten', async () => {
      const { chunk, store, loads, resets } = setup({ cache: true });
      await (
        await chunk([aReading('smartcar:a', 8, { isPluggedIn: true })])
      ).afterSend!();
      const stored = store.states.get('smartcar:a')!;
      store.states.set('smartcar:a', { ...stored, rev: stored.rev + 1 });
      const stale = await chunk([aReading('smartcar:a', 9, { isCharging: true })]);
      await expect(stale.afterSend!()).rejects.toMatchObject({ code: 'state_conflict' });
      expect(loads).toHaveLength(1);
      // The retry loads.
      await (
        await chunk([aReading('smartcar:a', 9, { isCharging: true })], 1)
      ).afterSend!();
      expect(loads).toHaveLength(2);
      expect(store.states.get('smartcar:a')?.rev).toBe(3);

      // A Redis reset and restore since (another epoch): refused as a reset, then loaded under the new epoch.
      store.marker = 'e2';
      const afterReset = await chunk([aReading('smartcar:a', 10, { isCharging: true })]);
      await expect(afterReset.afterSend!()).rejects.toMatchObject({ code: 'state_reset' });
      expect(resets).toEqual(['save']);
      await (
        await chunk([aReading('smartcar:a', 10, { isCharging: true })], 2)
      ).afterSend!();
      expect(loads).toHaveLength(3);
    });

    it('keeps nothing from a large chunk (a backlog), and drops what it held of its vehicles', async () => {
      const { chunk, loads, cache } = setup({ cache: true });
      await (
        await chunk([aReading('smartcar:a', 8, {}), aReading('smartcar:b', 8, {})])
      ).afterSend!();
      const many = Array.from({ length: CACHED_CHUNK_RECORDS }, (_, i) => aReading(`smartcar:v${i}`, 9, {}));
      await (
        await chunk([aReading('smartcar:a', 9, {}), ...many])
      ).afterSend!();
      expect(cache!.size()).toBe(1);
      // b was not in the large chunk: still taken from the cache; a was written by it: loaded.
      await (
        await chunk([aReading('smartcar:a', 10, {}), aReading('smartcar:b', 10, {})])
      ).afterSend!();
      expect(loads.at(-1)).toEqual(['smartcar:a']);
    });

    it('loads everything again when the vehicles it loads come with another epoch', async () => {
      const { chunk, store, loads } = setup({ cache: true });
      await (
        await chunk([aReading('smartcar:a', 8, {})])
      ).afterSend!();
      store.marker = 'e2';
      await (
        await chunk([aReading('smartcar:a', 9, {}), aReading('smartcar:b', 9, {})])
      ).afterSend!();
      expect(loads).toEqual([['smartcar:a'], ['smartcar:b'], ['smartcar:a', 'smartcar:b']]);
    });
  });

  it('refuses to reduce on an emptied Redis: starts the restore and throws', async () => {
    const { chunk, resets } = setup({ epoch: null });
    await expect(chunk([aReading('smartcar:a', 8, { isCharging: true })])).rejects.toMatchObject({
      code: 'state_reset',
    });
    expect(resets).toEqual(['load']);
  });

  it('fails afterSend when Redis was emptied after the load, or another writer won the race', async () => {
    const { chunk, store, resets } = setup();
    const first = await chunk([aReading('smartcar:a', 8, { isCharging: true })]);
    store.marker = 'another';
    await expect(first.afterSend!()).rejects.toMatchObject({ code: 'state_reset' });
    expect(resets).toEqual(['save']);

    store.marker = 'e1';
    const second = await chunk([aReading('smartcar:a', 8, { isCharging: true })]);
    store.states.set('smartcar:a', { rev: 5, state: store.states.get('smartcar:a')?.state ?? ({} as never) });
    await expect(second.afterSend!()).rejects.toMatchObject({ code: 'state_conflict', retriable: true });
  });
});
