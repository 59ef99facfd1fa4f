import { Registry } from 'prom-client';
import type { ChargingSession, VehicleTelemetry } from '@ampflow/contracts';
import type { Message } from 'kafkajs';
import type { ConsumedRecord, OutputRecord } from '@ampflow/kafka';
import { DependencyError } from '@ampflow/runtime';
import { createAggregatorMetrics } from './metrics';
import { DEFAULT_REDUCER_SETTINGS } from './session-reducer';
import { createSessionChunkHandler } from './session-chunk';
import { fingerprintOf, hasFingerprint } from './recent-events';
import { aFakeCodec, aFakeStore, aReading } from '../test/in-memory-fakes';

const NOW = Date.parse('2025-08-06T00:00:00.000Z');
const topics = { sessions: 'sessions', changelog: 'changelog' };

function aRecord(offset: number, value: Buffer): ConsumedRecord {
  return {
    topic: 'telemetry',
    partition: 0,
    message: { key: null, value, headers: {}, offset: String(offset), timestamp: '0', attributes: 0 },
  };
}

function setup(options: { epoch?: string | null; changelogLimitBytes?: number } = {}) {
  const codec = aFakeCodec();
  const store = aFakeStore(options);
  const registry = new Registry();
  const resets: string[] = [];
  /** What was sent to the changelog, and how many states the store held at that moment. */
  const changelogSends: Array<{ keys: unknown[]; statesAtSend: number }> = [];
  const producer = {
    send: async (topic: string, messages: Message[]) => {
      expect(topic).toBe('changelog');
      changelogSends.push({ keys: messages.map((m) => m.key), statesAtSend: store.states.size });
    },
    messageSizeLimit: async (topic: string) => {
      expect(topic).toBe('changelog');
      return options.changelogLimitBytes ?? 1_000_000;
    },
  };
  const handle = createSessionChunkHandler({
    codec,
    store,
    producer,
    settings: DEFAULT_REDUCER_SETTINGS,
    topics,
    now: () => NOW,
    metrics: createAggregatorMetrics(registry, async () => 0),
    stateReset: (where) => {
      resets.push(where);
      return new DependencyError('state_reset', `reset at ${where}`);
    },
  });
  const chunk = (readings: Array<VehicleTelemetry | Buffer>) =>
    handle(readings.map((r, i) => aRecord(i, Buffer.isBuffer(r) ? r : codec.wire(r))));
  return { codec, store, registry, resets, chunk, changelogSends };
}

const changesIn = (outputs: OutputRecord[]) =>
  outputs
    .filter((o) => o.topic === 'sessions')
    .map((o) => JSON.parse(String(o.message.value)) as ChargingSession)
    .map((s) => [s.vehicleId, s.change, s.endReason ?? null]);

describe('the session chunk handler', () => {
  it('applies each vehicle its readings in order; outputs the changes; after they are sent, the changelog, then Redis', async () => {
    const { chunk, store, registry, changelogSends } = setup();
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
    expect(outcome.outputs.every((o) => o.topic === 'sessions')).toBe(true);
    expect(outcome.deadLetters).toEqual([]);
    // Nothing goes to the changelog or the store until the outputs are acknowledged.
    expect(changelogSends).toEqual([]);
    expect(store.states.size).toBe(0);

    await outcome.afterSend!();
    expect(changelogSends).toEqual([{ keys: ['smartcar:a', 'smartcar:b'], statesAtSend: 0 }]);
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
    const { chunk, store, changelogSends } = setup({ changelogLimitBytes: 4_000 });
    // A 5,000-character user id is kept in the state (event ids are not: only their fingerprints are).
    const huge = aReading('smartcar:a', 8, { isCharging: true, userId: `smartcar:${'x'.repeat(5_000)}` });
    const next = aReading('smartcar:a', 9, { isCharging: true, userId: 'smartcar:u1' });
    const outcome = await chunk([huge, next]);

    expect(outcome.deadLetters).toEqual([
      { index: 0, error: expect.objectContaining({ code: 'record_too_large' }) },
    ]);
    expect(changesIn(outcome.outputs)).toEqual([['smartcar:a', 'STARTED', null]]);
    await outcome.afterSend!();
    expect(changelogSends).toEqual([{ keys: ['smartcar:a'], statesAtSend: 0 }]);
    const state = store.states.get('smartcar:a')?.state;
    expect(hasFingerprint(state!.recentEvents, fingerprintOf(huge.eventId))).toBe(false);
    expect(hasFingerprint(state!.recentEvents, fingerprintOf(next.eventId))).toBe(true);
    expect(state?.userId).toBe('smartcar:u1');
    expect(state?.session?.startedAt).toBe(huge.occurredAt + 3600_000);
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
