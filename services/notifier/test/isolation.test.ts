import { Topics } from '@ampflow/contracts';
import { eventually, uniqueName } from '@ampflow/testing';
import { telemetry } from './fixtures';
import {
  deliveredIds,
  registerSink,
  startNotifier,
  startSink,
  type NotifierUnderTest,
  type Sink,
} from './harness';

/**
 * Issue 10, Tests: a slow sink does not delay a fast one. The slow endpoint answers after 3 s with at most
 * 2 attempts in flight; every delivery to the fast endpoint completes while the slow one is still working.
 */
jest.setTimeout(90_000);

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function notifier(overrides = {}): Promise<NotifierUnderTest> {
  const n = await startNotifier(overrides);
  cleanups.push(async () => {
    await n.stop();
    expect(n.fatalErrors).toEqual([]);
  });
  return n;
}

async function sink(respond?: Parameters<typeof startSink>[0]): Promise<Sink> {
  const s = await startSink(respond);
  cleanups.push(() => s.close());
  return s;
}

const N = 6;

describe('notifier isolation', () => {
  it('a slow endpoint does not delay a fast one', async () => {
    const n = await notifier({ endpointConcurrency: 2, requestTimeoutMs: 10_000 });
    const slow = await sink(async (_h, _q, res) => {
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      res.writeHead(204).end();
    });
    const fast = await sink();
    await registerSink(n, slow, { eventTypes: ['vehicle.telemetry'] });
    await registerSink(n, fast, { eventTypes: ['vehicle.telemetry'] });
    const vehicle = `telematica:${uniqueName('v')}`;
    await n.produce(
      Topics.vehicleTelemetry,
      Array.from({ length: N }, (_, i) => telemetry(vehicle, i)),
    );

    await eventually(() => deliveredIds(fast).length >= N, 'every delivery to the fast endpoint');
    // Counted at the moment the fast endpoint completed: the slow one is far from done.
    const slowDoneThen = deliveredIds(slow).length;
    const slowStartedThen = slow.received.length;
    expect(new Set(deliveredIds(fast)).size).toBe(N);
    expect(slowDoneThen).toBeLessThan(N);
    expect(slowStartedThen).toBeLessThanOrEqual(2 + slowDoneThen);

    // And the slow endpoint still gets everything, each once.
    await eventually(() => deliveredIds(slow).length >= N, 'every delivery to the slow endpoint', 60_000);
    expect(new Set(deliveredIds(slow))).toEqual(new Set(deliveredIds(fast)));
    expect(deliveredIds(slow)).toHaveLength(N);
  });
});
