import type { Message } from 'kafkajs';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { ChargingSession } from '@ampflow/contracts';
import { AppError, ValidationError } from '@ampflow/runtime';
import { aFakeCodec, aFakeStore, aReading } from '../test/in-memory-fakes';
import { createAggregatorMetrics } from './metrics';
import { DEFAULT_REDUCER_SETTINGS, initialState, reduce } from './session-reducer';
import { decodeChangelogRecord } from './state-changelog';
import { createSweeper } from './sweeper';

const NOW = Date.parse('2025-08-06T00:00:00.000Z');
const logger = pino({ level: 'silent' });

/** A producer that records sends; `hang` leaves them unacknowledged, as a Kafka that went away would. */
function aFakeProducer(options: { hang?: boolean } = {}) {
  const sent: Array<{ topic: string; messages: Message[] }> = [];
  return {
    sent,
    send: (topic: string, messages: Message[]) => {
      if (options.hang) return new Promise<void>(() => undefined);
      sent.push({ topic, messages });
      return Promise.resolve();
    },
  };
}

function setup(options: { hang?: boolean; epoch?: string | null; restoring?: boolean } = {}) {
  const store = aFakeStore({ epoch: options.epoch });
  const producer = aFakeProducer(options);
  const registry = new Registry();
  const resets: string[] = [];
  const sweeper = createSweeper({
    store,
    producer,
    codec: aFakeCodec(),
    settings: DEFAULT_REDUCER_SETTINGS,
    topics: { sessions: 'sessions', changelog: 'changelog' },
    now: () => NOW,
    metrics: createAggregatorMetrics(registry, async () => 0),
    logger,
    isRestoring: () => options.restoring ?? false,
    stateReset: (where) => resets.push(where),
    sendTimeoutMs: 50,
  });
  /** A vehicle charging since hour 8 of the day before, its deadline `deadline`. */
  const openSession = (vehicleId: string, deadline: number) => {
    const reading = aReading(vehicleId, 8, { isCharging: true, stateOfChargePercent: 20 });
    store.states.set(vehicleId, { rev: 1, state: reduce(initialState(reading), reading).state });
    store.deadlines.set(vehicleId, deadline);
  };
  return { store, producer, registry, resets, sweeper, openSession };
}

describe('the timeout sweeper', () => {
  it('ends a session past its deadline: the change and the new state are acknowledged before Redis is written', async () => {
    const { sweeper, store, producer, registry, openSession } = setup();
    openSession('smartcar:a', NOW - 1);
    openSession('smartcar:b', NOW + 60_000);

    expect(await sweeper.sweep()).toBe(1);

    const ended = producer.sent.find((s) => s.topic === 'sessions')?.messages ?? [];
    expect(ended.map((m) => JSON.parse(String(m.value)) as ChargingSession)).toEqual([
      expect.objectContaining({ vehicleId: 'smartcar:a', change: 'ENDED', endReason: 'INACTIVITY_TIMEOUT' }),
    ]);
    const changelog = producer.sent.find((s) => s.topic === 'changelog')?.messages ?? [];
    expect(changelog).toHaveLength(1);
    const entry = decodeChangelogRecord(changelog[0]!.key as string, changelog[0]!.value as Buffer);
    expect(entry).toMatchObject({ vehicleId: 'smartcar:a', rev: 2, deadline: null });
    expect(store.states.get('smartcar:a')).toMatchObject({ rev: 2, state: { session: null } });
    expect(store.deadlines.get('smartcar:a')).toBeNull();
    expect(store.states.get('smartcar:b')?.rev).toBe(1);
    expect(store.claims.size).toBe(0);
    expect(await registry.getSingleMetricAsString('session_aggregator_sessions_ended_total')).toContain(
      'reason="INACTIVITY_TIMEOUT"} 1',
    );
  });

  it('leaves a vehicle another sweeper has claimed', async () => {
    const { sweeper, store, producer, openSession } = setup();
    openSession('smartcar:a', NOW - 1);
    store.claims.add('smartcar:a');
    expect(await sweeper.sweep()).toBe(0);
    expect(producer.sent).toEqual([]);
  });

  it('does not count a session whose state another writer changed meanwhile', async () => {
    const { sweeper, store, openSession } = setup();
    openSession('smartcar:a', NOW - 1);
    const save = store.save;
    store.save = async (epoch, writes) => {
      store.states.set('smartcar:a', { ...store.states.get('smartcar:a')!, rev: 9 });
      return save(epoch, writes);
    };
    expect(await sweeper.sweep()).toBe(0);
    expect(store.states.get('smartcar:a')?.rev).toBe(9);
  });

  it('does not end a session whose reading moved its deadline after the sweep found it due', async () => {
    const { sweeper, store, producer, openSession } = setup();
    openSession('smartcar:a', NOW - 1);
    // A chunk applies a fresh reading between the sweep's look-up of due vehicles and its load of the state.
    const load = store.load;
    store.load = async (ids) => {
      const current = store.states.get('smartcar:a')!;
      store.states.set('smartcar:a', { ...current, rev: current.rev + 1 });
      store.deadlines.set('smartcar:a', NOW + 6 * 3600_000);
      return load(ids);
    };
    expect(await sweeper.sweep()).toBe(0);
    expect(producer.sent).toEqual([]);
    expect(store.states.get('smartcar:a')?.state.session).not.toBeNull();
  });

  it('drops a deadline whose state expired, so it does not come back in every sweep', async () => {
    const { sweeper, store, producer } = setup();
    store.deadlines.set('smartcar:gone', NOW - 1);
    expect(await sweeper.sweep()).toBe(0);
    expect(store.deadlines.has('smartcar:gone')).toBe(false);
    expect(producer.sent).toEqual([]);
  });

  it('does nothing while Redis is being restored', async () => {
    const { sweeper, openSession, producer } = setup({ restoring: true });
    openSession('smartcar:a', NOW - 1);
    expect(await sweeper.sweep()).toBe(0);
    expect(producer.sent).toEqual([]);
  });

  it('starts the restore when Redis was emptied, and ends nothing', async () => {
    const { sweeper, resets } = setup({ epoch: null });
    expect(await sweeper.sweep()).toBe(0);
    expect(resets).toEqual(['load']);
  });

  it('gives up on a send Kafka does not acknowledge in time, releasing the claim and writing nothing', async () => {
    const { sweeper, store, openSession } = setup({ hang: true });
    openSession('smartcar:a', NOW - 1);
    const error = await sweeper.sweep().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({ code: 'kafka_timeout', retriable: true });
    expect(store.states.get('smartcar:a')?.rev).toBe(1);
    expect(store.claims.size).toBe(0);
  });

  it('leaves a session Kafka refuses for good (too large) due, and ends the other vehicles', async () => {
    const { sweeper, store, producer, openSession } = setup();
    openSession('smartcar:huge', NOW - 2);
    openSession('smartcar:b', NOW - 1);
    const send = producer.send;
    producer.send = (topic, messages) =>
      messages.some((m) => m.key === 'smartcar:huge')
        ? Promise.reject(new ValidationError('record_too_large', `over what ${topic} accepts`))
        : send(topic, messages);

    expect(await sweeper.sweep()).toBe(1);
    expect(store.states.get('smartcar:b')?.state.session).toBeNull();
    expect(store.states.get('smartcar:huge')).toMatchObject({ rev: 1, state: { session: { version: 1 } } });
    expect(store.deadlines.get('smartcar:huge')).toBe(NOW - 2);
    expect(store.claims.size).toBe(0);
  });

  it('stops before the next vehicle once its signal aborts', async () => {
    const { sweeper, openSession, producer } = setup();
    openSession('smartcar:a', NOW - 2);
    openSession('smartcar:b', NOW - 1);
    const controller = new AbortController();
    const send = producer.send;
    producer.send = (topic, messages) => {
      controller.abort();
      return send(topic, messages);
    };
    expect(await sweeper.sweep(controller.signal)).toBe(1);
  });
});
