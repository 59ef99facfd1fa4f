import Redis from 'ioredis';
import pino from 'pino';
import type { ChargingSession } from '@ampflow/contracts';
import { metricValue, startRedisProcess, uniqueName } from '@ampflow/testing';
import { diffSessions, fleetScenario, type FleetScenario } from './fleet-scenario';
import { noDifference, runFleet as runFleetThrough } from './fleet-run';

const logger = pino({ level: 'silent' });
// The comparison of each run with the clean one goes to the test log: it is the figure the issue quotes.
const testLog = pino({ level: 'info', base: { test: 'redis-loss' } });
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

type Disruption = 'none' | 'kill-between-phases' | 'flush-while-running';

/** The fleet scenario through a real aggregator with a Redis of its own, disrupted as `disruption` says. */
async function runFleet(fleet: FleetScenario, disruption: Disruption) {
  const redis = await startRedisProcess();
  cleanups.push(() => redis.stop());
  return runFleetThrough(fleet, {
    name: 'loss',
    redis: new Redis(redis.url, { lazyConnect: true, enableAutoPipelining: true }),
    cleanups,
    fatalErrors,
    logger,
    phaseB: async (publish, readings) => {
      const half = Math.floor(readings.length / 2);
      if (disruption === 'kill-between-phases') {
        await redis.kill('SIGKILL');
        await redis.restart();
        await publish(readings);
      } else if (disruption === 'flush-while-running') {
        await publish(readings.slice(0, half));
        await redis.flushAll();
        await publish(readings.slice(half));
      } else {
        await publish(readings);
      }
    },
    // The sweeper must find its deadlines again.
    beforeSweep: disruption === 'flush-while-running' ? () => redis.flushAll() : undefined,
  });
}

describe('session aggregator when its Redis (no persistence) loses everything', () => {
  const fleet = fleetScenario(uniqueName('fleet'), 200);
  let clean: ChargingSession[] = [];

  beforeAll(async () => {
    clean = (await runFleet(fleet, 'none')).sessions;
    await runCleanups();
    const started = clean.filter((s) => s.change === 'STARTED').length;
    const timedOut = clean.filter((s) => s.endReason === 'INACTIVITY_TIMEOUT').length;
    testLog.info({ records: clean.length, started, timedOut, openAfterA: fleet.openAfterA }, 'clean run');
  }, 120_000);

  it('the clean run ends every session, the idle ones by the sweeper', () => {
    const diff = diffSessions(clean, clean);
    expect(diff.conflicting).toBe(0);
    const started = new Set(clean.filter((s) => s.change === 'STARTED').map((s) => s.sessionId));
    const ended = new Set(clean.filter((s) => s.change === 'ENDED').map((s) => s.sessionId));
    expect(ended).toEqual(started);
    expect(clean.filter((s) => s.endReason === 'INACTIVITY_TIMEOUT')).toHaveLength(fleet.expectedTimeouts);
  });

  it.each<Disruption>(['kill-between-phases', 'flush-while-running'])(
    'Redis %s: exactly the clean run’s sessions, none started twice, every one ended',
    async (disruption) => {
      const { sessions, metrics } = await runFleet(fleet, disruption);
      const diff = diffSessions(clean, sessions);
      const restores = metricValue(metrics, 'session_aggregator_state_restores_total', {
        outcome: 'completed',
      });
      const resets = ['load', 'save']
        .map((at) => metricValue(metrics, 'session_aggregator_state_resets_total', { at }) ?? 0)
        .reduce((a, b) => a + b, 0);
      testLog.info({ disruption, restores, resets, ...diff }, 'sessions compared with the clean run');
      // The empty Redis at start is one restore; each loss found by a chunk or the sweeper is another.
      expect(restores).toBeGreaterThanOrEqual(2);
      expect(resets).toBeGreaterThanOrEqual(1);
      expect({ ...diff, referenceChanges: 0, changes: 0 }).toEqual(noDifference);
      expect(diff.changes).toBe(diff.referenceChanges);
    },
    120_000,
  );
});
