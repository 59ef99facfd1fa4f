import { createRedisClient } from '@ampflow/runtime/redis';
import pino from 'pino';
import type { ChargingSession } from '@ampflow/contracts';
import { metricValue, startRedisCluster, uniqueName, type RedisClusterProcess } from '@ampflow/testing';
import { diffSessions, fleetScenario, type FleetScenario } from './fleet-scenario';
import { noDifference, runFleet as runFleetThrough } from './fleet-run';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
// The comparison of each run with the clean one goes to the test log: it is the figure the issue quotes.
const testLog = pino({ level: 'info', base: { test: 'redis-cluster' } });
/** What the aggregator reported as fatal (a stuck consumer or producer); every test expects none. */
const fatalErrors: unknown[] = [];
afterEach(() => {
  expect(fatalErrors.splice(0)).toEqual([]);
});
const cleanups: Array<() => Promise<void>> = [];

async function runCleanups() {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
}
afterEach(runCleanups);
afterAll(runCleanups);

type Disruption = 'none' | 'master-restarted-empty';
let cluster: RedisClusterProcess;
beforeAll(async () => {
  cluster = await startRedisCluster();
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

/**
 * The fleet scenario through a real aggregator on a Redis Cluster of its own (three masters). With
 * `master-restarted-empty`, one master holding shards of this run's state is SIGKILLed while the second half of
 * phase B is taken in and stays down past the node timeout (the cluster refuses every command meanwhile:
 * CLUSTERDOWN), then comes back empty.
 */
async function runFleet(fleet: FleetScenario, disruption: Disruption) {
  return runFleetThrough(fleet, {
    name: 'cluster',
    redis: createRedisClient(cluster.url, {
      lazyConnect: true,
      enableAutoPipelining: true,
      maxRetriesPerRequest: 3,
    }),
    cleanups,
    fatalErrors,
    logger,
    phaseB: async (publish, readings) => {
      const half = Math.floor(readings.length / 2);
      await publish(readings.slice(0, half));
      if (disruption === 'master-restarted-empty') {
        expect(await cluster.dbsize(1)).toBeGreaterThan(0);
        await Promise.all([publish(readings.slice(half)), cluster.restartEmpty(1, 3_000)]);
      } else {
        await publish(readings.slice(half));
      }
    },
  });
}

describe('session aggregator on a Redis Cluster', () => {
  const fleet = fleetScenario(uniqueName('fleet'), 200);
  let clean: ChargingSession[] = [];

  beforeAll(async () => {
    clean = (await runFleet(fleet, 'none')).sessions;
    await runCleanups();
    const started = clean.filter((s) => s.change === 'STARTED').length;
    const timedOut = clean.filter((s) => s.endReason === 'INACTIVITY_TIMEOUT').length;
    testLog.info({ records: clean.length, started, timedOut, openAfterA: fleet.openAfterA }, 'clean run');
  }, 120_000);

  it('a clean run ends every session exactly once, the idle ones by the sweeper', () => {
    const diff = diffSessions(clean, clean);
    expect(diff.conflicting).toBe(0);
    const started = clean.filter((s) => s.change === 'STARTED').map((s) => s.sessionId);
    const ended = clean.filter((s) => s.change === 'ENDED').map((s) => s.sessionId);
    expect(new Set(started).size).toBe(started.length);
    expect(new Set(ended)).toEqual(new Set(started));
    expect(ended).toHaveLength(started.length);
    expect(started.length).toBeGreaterThan(0);
    expect(clean.filter((s) => s.endReason === 'INACTIVITY_TIMEOUT')).toHaveLength(fleet.expectedTimeouts);
  });

  it('a master killed and restarted empty mid-run: restored from the changelog, exactly the clean run’s sessions', async () => {
    const { sessions, metrics } = await runFleet(fleet, 'master-restarted-empty');
    const diff = diffSessions(clean, sessions);
    const restores = metricValue(metrics, 'session_aggregator_state_restores_total', {
      outcome: 'completed',
    });
    const resets = ['load', 'save']
      .map((at) => metricValue(metrics, 'session_aggregator_state_resets_total', { at }) ?? 0)
      .reduce((a, b) => a + b, 0);
    testLog.info({ restores, resets, ...diff }, 'sessions compared with the clean run');
    // The empty namespace at start is one restore; the master's loss, found by a chunk or the sweeper, another.
    expect(restores).toBeGreaterThanOrEqual(2);
    expect(resets).toBeGreaterThanOrEqual(1);
    expect({ ...diff, referenceChanges: 0, changes: 0 }).toEqual(noDifference);
    expect(diff.changes).toBe(diff.referenceChanges);
  }, 120_000);
});
