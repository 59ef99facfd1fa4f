import Redis from 'ioredis';
import pino from 'pino';
import { createReliableProducer, ensureTopics } from '@ampflow/kafka';
import { startRedisProcess, testKafka, uniqueName, type RedisProcess } from '@ampflow/testing';
import { createRedisSessionStore, type SessionStore } from '../src/redis-session-store';
import { initialState, reduce, type VehicleSessionState } from '../src/session-reducer';
import { encodeChangelogValue, type ChangelogEntry } from '../src/state-changelog';
import { createStateRestorer, ensureChangelogTopic } from '../src/state-restore';

const logger = pino({ level: 'silent' });
// The restore time is a figure the docs quote: it goes to the test log.
const testLog = pino({ level: 'info', base: { test: 'state-restore' } });
const kafka = testKafka();
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

const NOW = Date.parse('2025-09-02T12:00:00.000Z');
const TTL_S = 30 * 24 * 3600;

async function dedicatedRedis(): Promise<RedisProcess> {
  const redis = await startRedisProcess();
  cleanups.push(() => redis.stop());
  return redis;
}

function client(url: string): Redis {
  const redis = new Redis(url, { enableAutoPipelining: true });
  cleanups.push(async () => {
    redis.disconnect();
  });
  return redis;
}

/** A state as the reducer leaves it after `readings` readings, with the production's 64 recent event ids. */
function aState(vehicleId: string, readings: number, open: boolean): VehicleSessionState {
  let state = initialState({ vehicleId, provider: 'smartcar', userId: null });
  for (let i = 0; i < readings; i++) {
    state = reduce(
      state,
      {
        eventId: `smartcar:${vehicleId}-3f1c9a2e-7b4d-4e8a-9c61-${String(i).padStart(12, '0')}`,
        provider: 'smartcar',
        vehicleId,
        userId: null,
        occurredAt: NOW - (readings - i) * 60_000,
        isCharging: open || i < readings - 1,
        isPluggedIn: true,
        chargingState: null,
        stateOfChargePercent: 20 + (i % 60),
        chargePowerKw: 11,
        energyAddedKwh: i * 0.2,
        batteryCapacityKwh: 75,
        location: { latitude: 52.52, longitude: 13.405 },
      },
      { inactivityTimeoutMs: 6 * 3600_000, updateMinIntervalMs: 0, recentEventIdLimit: 64 },
    ).state;
  }
  return state;
}

async function changelogTopicWith(partitions: number): Promise<string> {
  const telemetryTopic = uniqueName('restore.telemetry');
  const changelogTopic = uniqueName('restore.changelog');
  await ensureTopics(kafka, [{ topic: telemetryTopic, numPartitions: partitions }]);
  await ensureChangelogTopic(kafka, { telemetryTopic, changelogTopic }, logger);
  return changelogTopic;
}

function restorerFor(store: SessionStore, changelogTopic: string, onRestored: () => void) {
  return createStateRestorer({
    kafka,
    store,
    changelogTopic,
    groupIdPrefix: uniqueName('restore'),
    logger,
    now: () => NOW,
    stateTtlSeconds: TTL_S,
    onRestored,
  });
}

describe('restoring Redis from the state changelog', () => {
  it('creates the changelog compacted, with the telemetry topic’s partition count', async () => {
    const topic = await changelogTopicWith(5);
    const admin = kafka.admin();
    await admin.connect();
    try {
      const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
      expect(topics[0]!.partitions).toHaveLength(5);
      const { resources } = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: 2 /* TOPIC */, name: topic, configNames: ['cleanup.policy'] }],
      });
      expect(resources[0]!.configEntries[0]).toMatchObject({
        configName: 'cleanup.policy',
        configValue: 'compact',
      });
    } finally {
      await admin.disconnect();
    }
  });

  it('10,000 vehicles: two instances restore at once, one does the work, every latest state is back', async () => {
    const vehicles = 10_000;
    const changelogTopic = await changelogTopicWith(6);
    const producer = createReliableProducer(kafka);
    await producer.connect();
    cleanups.push(() => producer.disconnect());

    // Every vehicle's state, an older version first for a tenth of them, tombstones for some, and some that
    // were written longer ago than the state TTL (Redis would have expired them).
    const latest = new Map<string, ChangelogEntry | null>();
    const records: Array<{ key: string; value: Buffer | null }> = [];
    const put = (entry: ChangelogEntry) => {
      latest.set(entry.vehicleId, entry);
      records.push({ key: entry.vehicleId, value: encodeChangelogValue(entry) });
    };
    for (let i = 0; i < vehicles; i++) {
      const vehicleId = `smartcar:restore-${i}`;
      const open = i % 3 === 0;
      if (i % 10 === 0)
        put({
          vehicleId,
          rev: 1,
          state: aState(vehicleId, 10, true),
          deadline: NOW,
          writtenAt: NOW - 7_200_000,
        });
      put({
        vehicleId,
        rev: 2,
        state: aState(vehicleId, 80, open),
        deadline: open ? NOW + 3_600_000 + i : null,
        writtenAt: i % 97 === 0 ? NOW - (TTL_S + 60) * 1000 : NOW - 60_000,
      });
      if (i % 101 === 0) {
        latest.set(vehicleId, null);
        records.push({ key: vehicleId, value: null });
      }
    }
    for (let i = 0; i < records.length; i += 500)
      await producer.send(changelogTopic, records.slice(i, i + 500));

    const redis = await dedicatedRedis();
    const namespace = uniqueName('restore');
    const stores = [0, 1].map(() =>
      createRedisSessionStore(client(redis.url), { namespace, stateTtlSeconds: TTL_S }),
    );
    let restores = 0;
    const started = Date.now();
    await Promise.all(
      stores.map((store) => restorerFor(store, changelogTopic, () => (restores += 1)).ensureRestored()),
    );
    const ms = Date.now() - started;
    testLog.info(
      {
        vehicles,
        records: records.length,
        bytes: records.reduce((n, r) => n + (r.value?.length ?? 0), 0),
        ms,
      },
      'restore time',
    );
    expect(restores).toBe(1);

    const ids = [...latest.keys()];
    const { epoch, states } = await stores[0]!.load(ids);
    expect(epoch).not.toBeNull();
    const kept = [...latest.values()].filter(
      (e): e is ChangelogEntry => e !== null && NOW - e.writtenAt < TTL_S * 1000,
    );
    expect(states.size).toBe(kept.length);
    for (const e of kept) expect(states.get(e.vehicleId)).toEqual({ rev: e.rev, state: e.state });
    const withDeadline = kept.filter((e) => e.deadline !== null);
    expect(await stores[0]!.openSessions()).toBe(withDeadline.length);
    const due = await stores[0]!.due(NOW + 3_600_000 + vehicles, vehicles);
    expect(new Map(due.map((d) => [d.vehicleId, d.deadline]))).toEqual(
      new Map(withDeadline.map((e) => [e.vehicleId, e.deadline])),
    );
  }, 120_000);

  it('an empty changelog restores nothing and sets the marker; writes under an old epoch are refused', async () => {
    const changelogTopic = await changelogTopicWith(3);
    const redis = await dedicatedRedis();
    const store = createRedisSessionStore(client(redis.url), {
      namespace: uniqueName('restore'),
      stateTtlSeconds: TTL_S,
    });
    expect(await store.epoch()).toBeNull();
    await restorerFor(store, changelogTopic, () => undefined).ensureRestored();
    const epoch = (await store.epoch())!;
    expect(epoch).not.toBeNull();

    const state = aState('smartcar:epoch', 3, true);
    const write = { vehicleId: state.vehicleId, expectedRev: 0, state, deadline: NOW };
    expect(await store.save(epoch, [write])).toEqual({ lost: [], reset: false });
    expect(await store.save(epoch, [write])).toEqual({ lost: [state.vehicleId], reset: false });
    // Emptied: no write may land on top of it, even one that expects no state at all.
    await redis.flushAll();
    expect(await store.save(epoch, [write])).toEqual({ lost: [], reset: true });
    expect((await store.load([state.vehicleId])).states.size).toBe(0);
    // A restore that does not hold the lock, or comes after the marker, writes nothing.
    const w = { vehicleId: state.vehicleId, rev: 1, state, deadline: null, ttlSeconds: 60 };
    expect(await store.restore('not-the-lock', [w])).toBe(false);
    expect(await store.lockRestore('mine', 10_000)).toBe(true);
    expect(await store.restore('mine', [w])).toBe(true);
    expect(await store.completeRestore('mine', 'epoch-2')).toBe(true);
    expect(await store.restore('mine', [w])).toBe(false);
    expect(await store.lockRestore('again', 10_000)).toBe(true);
    expect(await store.restore('again', [w])).toBe(false);
  });
});
