import { Topics } from '@ampflow/contracts';
import { eventually, uniqueName } from '@ampflow/testing';
import { telemetry } from './fixtures';
import { deliveredIds, registerSink, managedNotifiers } from './harness';

/**
 * Issue 10, Tests: a slow sink does not delay a fast one. The slow endpoint answers after 3 s with at most
 * 2 attempts in flight; every delivery to the fast endpoint completes while the slow one is still working.
 */
jest.setTimeout(90_000);

const { notifier, sink } = managedNotifiers();

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

  it('a slow endpoint does not hold up a fast one when its deliveries outnumber what a partition may keep open', async () => {
    // Each source partition keeps at most 10 records open (30 over the 3 partitions). Without moving the slow
    // endpoint's deliveries out of its queue once their wait would pass 2 s, its queue alone (far below its
    // 1,000 bound) would keep every partition paused and the fast endpoint would crawl along at its pace.
    const n = await notifier({
      endpointConcurrency: 2,
      requestTimeoutMs: 10_000,
      maxSourceOutstandingPerPartition: 10,
    });
    const slow = await sink(async (_h, _q, res) => {
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      res.writeHead(204).end();
    });
    const fast = await sink();
    await registerSink(n, slow, { eventTypes: ['vehicle.telemetry'] });
    await registerSink(n, fast, { eventTypes: ['vehicle.telemetry'] });
    const vehicles = Array.from({ length: 6 }, () => `telematica:${uniqueName('v')}`);
    const many = 60;
    await n.produce(
      Topics.vehicleTelemetry,
      Array.from({ length: many }, (_, i) => telemetry(vehicles[i % vehicles.length]!, i)),
    );
    await eventually(() => deliveredIds(fast).length >= many, 'every delivery to the fast endpoint', 60_000);
    // 60 deliveries at 2 per 1.5 s take the slow endpoint 45 s; the fast one finished with most still to come.
    expect(new Set(deliveredIds(fast)).size).toBe(many);
    expect(deliveredIds(slow).length).toBeLessThan(many / 2);
  });
});
