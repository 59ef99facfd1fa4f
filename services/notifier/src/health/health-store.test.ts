import pino from 'pino';
import { CLOSED_CIRCUIT, recordFailure, type CircuitState } from '../delivery/circuit-breaker';
import {
  createHealthStoreOn,
  decodeHealth,
  encodeHealth,
  sameHealth,
  type HealthTable,
} from './health-store';

const SETTINGS = { failureThreshold: 2, cooldownMs: 1_000 };

/** An in-memory table: writes are applied when the test lets them through (`release`), or fail (`failNext`). */
function memoryTable() {
  const rows = new Map<string, CircuitState>();
  const waiting: Array<() => void> = [];
  let failures = 0;
  const writes: Array<[string, CircuitState | undefined]> = [];
  const apply = (key: string, value: CircuitState | undefined) =>
    new Promise<void>((resolve, reject) => {
      waiting.push(() => {
        if (failures > 0) {
          failures -= 1;
          reject(new Error('broker away'));
          return;
        }
        writes.push([key, value]);
        if (value === undefined) rows.delete(key);
        else rows.set(key, value);
        resolve();
      });
    });
  const table: HealthTable = {
    start: async () => undefined,
    stop: async () => undefined,
    caughtUp: () => true,
    get: (key) => rows.get(key),
    entries: () => rows.entries(),
    put: (key, value) => apply(key, value),
    delete: (key) => apply(key, undefined),
  };
  return {
    table,
    rows,
    writes,
    failNext: (n: number) => (failures = n),
    /** Lets every write waiting now through, and those they lead to. */
    async release() {
      for (let round = 0; round < 10; round += 1) {
        await new Promise((resolve) => setImmediate(resolve));
        for (const go of waiting.splice(0)) go();
      }
    },
  };
}

const logger = pino({ level: 'silent' });

describe('endpoint health store', () => {
  it('answers with what was set at once and writes only the latest of a burst', async () => {
    const t = memoryTable();
    const store = createHealthStoreOn(t.table, { logger, retryDelayMs: 1 });
    let state: CircuitState = CLOSED_CIRCUIT;
    for (let at = 1; at <= 4; at += 1) {
      state = recordFailure(state, at * 1_000, SETTINGS);
      store.set('ep_1', state);
    }
    expect(store.get('ep_1')).toEqual(state);
    expect(store.openCircuits()).toBe(1);
    await t.release();
    await store.flush();
    // The first write went at once; the three states set meanwhile became one write, the latest.
    expect(t.writes.map(([, value]) => value?.consecutiveFailures)).toEqual([1, 4]);
    expect(t.rows.get('ep_1')).toEqual(state);
    expect(store.get('ep_1')).toEqual(state);
    expect(state).toMatchObject({ status: 'open', failingSince: 1_000 });
  });

  it('is what the next owner reads: a new store over the same table has the circuit and the clock', async () => {
    const t = memoryTable();
    const first = createHealthStoreOn(t.table, { logger, retryDelayMs: 1 });
    const opened = recordFailure(recordFailure(CLOSED_CIRCUIT, 5_000, SETTINGS), 6_000, SETTINGS);
    first.set('ep_1', opened);
    await t.release();
    await first.flush();
    const next = createHealthStoreOn(t.table, { logger });
    expect(next.get('ep_1')).toEqual(opened);
    expect(next.get('ep_1').failingSince).toBe(5_000);
    expect(next.get('ep_2')).toEqual(CLOSED_CIRCUIT);
  });

  it('retries a failed write until it is read back', async () => {
    const t = memoryTable();
    const store = createHealthStoreOn(t.table, { logger, retryDelayMs: 1 });
    t.failNext(2);
    const state = recordFailure(CLOSED_CIRCUIT, 1_000, SETTINGS);
    store.set('ep_1', state);
    for (let i = 0; i < 5 && !t.rows.has('ep_1'); i += 1) {
      await t.release();
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await t.release();
    await store.flush();
    expect(t.rows.get('ep_1')).toEqual(state);
  });

  it('writes nothing for a state it already holds, and a tombstone only for something to forget', async () => {
    const t = memoryTable();
    const store = createHealthStoreOn(t.table, { logger });
    store.set('ep_1', { ...CLOSED_CIRCUIT });
    store.reset('ep_1');
    await t.release();
    expect(t.writes).toEqual([]);
    store.set('ep_1', recordFailure(CLOSED_CIRCUIT, 1, SETTINGS));
    await t.release();
    store.reset('ep_1');
    await t.release();
    await store.flush();
    expect(t.writes.map(([, value]) => value === undefined)).toEqual([false, true]);
    expect(store.get('ep_1')).toEqual(CLOSED_CIRCUIT);
    expect(store.openCircuits()).toBe(0);
  });

  it('encodes and decodes a state, refusing anything else', () => {
    const state: CircuitState = {
      status: 'half_open',
      consecutiveFailures: 7,
      openedAt: 10,
      probeStartedAt: 20,
      failingSince: 5,
    };
    expect(sameHealth(decodeHealth(encodeHealth(state)), state)).toBe(true);
    expect(() => decodeHealth(Buffer.from('{"v":1,"status":"ajar","consecutiveFailures":1}'))).toThrow(
      /not an endpoint health record/,
    );
    expect(() => decodeHealth(Buffer.from('not json'))).toThrow();
  });
});
