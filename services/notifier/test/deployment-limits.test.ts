import { Topics } from '@ampflow/contracts';
import { eventually, uniqueName } from '@ampflow/testing';
import { telemetry } from './fixtures';
import {
  deliveredIds,
  registerSink,
  startNotifier,
  type Json,
  type NotifierUnderTest,
  type Sink,
} from './harness';
import type { NotifierSettings } from '../src/app';
import { maxInOneSecond, measuredSink } from './measured-sink';

/**
 * Issue 17: an endpoint's limits hold for the deployment, not per instance. Two notifiers (then three) share one
 * consumer group; each reads part of the source topics, so before the deliveries topic both sent to every
 * endpoint (a second instance doubled the rate and the concurrency an endpoint saw, and opened its own circuit).
 * One loopback receiver per endpoint measures what the endpoint sees.
 */
jest.setTimeout(180_000);

const RATE = 5;
/** The throttle banks one token at most (throttleBurst(5)): rate + 1 in any 1 s window (docs/notifier.md). */
const MAX_PER_SECOND = RATE + 1;
const CONCURRENCY = 3;

/** A counter's value on one notifier's /metrics (summed over its label sets). */
async function metric(n: NotifierUnderTest, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${n.app.port()}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== ' ' && line[name.length] !== '{')) continue;
    if (labels && !line.includes(labels)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

describe('per-endpoint limits across notifier instances', () => {
  const running: NotifierUnderTest[] = [];
  const sinks: Sink[] = [];
  afterEach(async () => {
    for (const n of running.splice(0).reverse()) {
      await n.stop();
      expect(n.fatalErrors).toEqual([]);
    }
    for (const s of sinks.splice(0)) await s.close();
  });

  async function notifier(prefix: string, overrides: Partial<NotifierSettings>): Promise<NotifierUnderTest> {
    const n = await startNotifier({ deliveryTopicPartitions: 6, ...overrides }, { prefix });
    running.push(n);
    return n;
  }

  it("holds a throttled endpoint to its rate and a slow one to its concurrency, through a third instance's join; every message once or more, same ids", async () => {
    const prefix = `${uniqueName('ntlim')}.`;
    const settings: Partial<NotifierSettings> = { endpointConcurrency: CONCURRENCY, handoverMs: 2_500 };
    const first = await notifier(prefix, settings);
    const throttled = await measuredSink(0);
    const slow = await measuredSink(400);
    sinks.push(throttled.sink, slow.sink);
    await registerSink(first, throttled.sink, { eventTypes: ['vehicle.telemetry'], throttleRate: RATE });
    await registerSink(first, slow.sink, { eventTypes: ['vehicle.telemetry'] });
    const second = await notifier(prefix, settings);

    const N = 60;
    const records = Array.from({ length: N }, (_, i) => telemetry(`smartcar:lim-${i % 12}`, i));
    await first.produce(Topics.vehicleTelemetry, records);
    // A third instance joins while both endpoints are busy: partitions move, and the new owners wait out the
    // previous owners' attempts in flight (the handover) before they send.
    await eventually(() => throttled.arrivals.length >= 15, 'the throttled endpoint busy', 60_000);
    await notifier(prefix, settings);

    await eventually(
      () => new Set(deliveredIds(throttled.sink)).size === N && new Set(deliveredIds(slow.sink)).size === N,
      'every message at both endpoints',
      150_000,
      200,
    );
    // Both instances read source records (3 partitions each topic), so both made deliveries to both endpoints.
    expect(await metric(first, 'notifier_events_total')).toBeGreaterThan(0);
    expect(await metric(second, 'notifier_events_total')).toBeGreaterThan(0);

    process.stderr.write(
      `[notifier deployment limits] throttleRate ${RATE}: ${throttled.arrivals.length} requests, at most ` +
        `${maxInOneSecond(throttled.arrivals)} in any 1 s window; concurrency ${CONCURRENCY}: ` +
        `${slow.arrivals.length} requests, at most ${slow.maxInFlight} at once\n`,
    );
    expect(maxInOneSecond(throttled.arrivals)).toBeLessThanOrEqual(MAX_PER_SECOND);
    expect(slow.maxInFlight).toBeLessThanOrEqual(CONCURRENCY);
    // Busy enough to measure: the slow endpoint's slots were all used at some point.
    expect(slow.maxInFlight).toBe(CONCURRENCY);
    for (const { sink } of [throttled, slow]) {
      expect(sink.unverified).toBe(0);
      // One id per message at both endpoints, the same at each: a repeat (at least once) carries the same id.
      expect(new Set(sink.received.map((h) => h.id)).size).toBe(N);
      const byEvent = new Map<string, string>();
      for (const hook of sink.received) {
        const data = (hook.body as Json).data;
        const eventId = `${data.vehicleId}@${data.occurredAt}`; // each record has its own minute
        expect(byEvent.get(eventId) ?? hook.id).toBe(hook.id);
        byEvent.set(eventId, hook.id);
      }
    }
    expect(new Set(deliveredIds(throttled.sink))).toEqual(new Set(deliveredIds(slow.sink)));
  });

  it("opens a failing endpoint's circuit once for the deployment, and its owner's restart keeps the circuit and the failing-since clock", async () => {
    const prefix = `${uniqueName('ntcirc')}.`;
    const settings: Partial<NotifierSettings> = {
      circuitFailures: 3,
      circuitCooldownMs: 120_000,
      endpointConcurrency: 1,
      handoverMs: 2_500,
    };
    const first = await notifier(prefix, settings);
    const failing = await measuredSink(0, 500);
    sinks.push(failing.sink);
    const id = await registerSink(first, failing.sink, { eventTypes: ['vehicle.telemetry'] });
    const second = await notifier(prefix, settings);

    await first.produce(
      Topics.vehicleTelemetry,
      Array.from({ length: 20 }, (_, i) => telemetry(`smartcar:circ-${i % 6}`, i)),
    );
    const opened = async () =>
      (await metric(first, 'notifier_circuits_opened_total')) +
      (await metric(second, 'notifier_circuits_opened_total'));
    await eventually(async () => (await opened()) >= 1, 'the circuit opened', 60_000, 200);
    // The rest wait in the retry tiers and come back while it stays open: deferred, not attempted.
    const deferred = async (n: NotifierUnderTest) =>
      metric(n, 'notifier_deferred_total', 'reason="circuit_open"');
    await eventually(
      async () => (await deferred(first)) + (await deferred(second)) >= 10,
      'deliveries deferred by the open circuit',
      60_000,
      200,
    );
    expect(await opened()).toBe(1);
    // Concurrency 1: exactly the failures that opened it, one endpoint, one circuit.
    expect(failing.arrivals).toHaveLength(3);

    const healthOf = async (n: NotifierUnderTest) =>
      ((await n.admin('GET', '/v1/endpoints')).body.data as Json[]).find((e) => e.id === id).health;
    const before = await healthOf(first);
    expect(before.circuit).toBe('open');
    expect(before.failingSince).toEqual(expect.any(String));
    // Every instance reports the deployment's circuit, not one of its own.
    await eventually(async () => (await healthOf(second)).circuit === 'open', 'the circuit seen by both');
    expect((await healthOf(second)).failingSince).toBe(before.failingSince);

    // The owner of the endpoint restarts (whichever opened the circuit): the next owner goes on from its state.
    const owner = (await metric(first, 'notifier_circuits_opened_total')) === 1 ? first : second;
    const other = owner === first ? second : first;
    running.splice(running.indexOf(owner), 1);
    await owner.stop();
    expect(owner.fatalErrors).toEqual([]);
    const restarted = await notifier(prefix, settings);
    const deferredBefore = (await deferred(other)) + (await deferred(restarted));
    // New messages for the endpoint: whichever instance owns it now defers them (open circuit), sends nothing.
    await other.produce(
      Topics.vehicleTelemetry,
      Array.from({ length: 6 }, (_, i) => telemetry(`smartcar:circ-${i}`, 100 + i)),
    );
    await eventually(
      async () => (await deferred(other)) + (await deferred(restarted)) >= deferredBefore + 6,
      'deliveries deferred by the circuit after the restart',
      90_000,
      200,
    );
    expect((await healthOf(restarted)).failingSince).toBe(before.failingSince);
    expect((await healthOf(restarted)).circuit).toBe('open');
    // Nothing re-opened it and nothing was sent: the cool-down (2 min) has not passed.
    expect(
      (await metric(other, 'notifier_circuits_opened_total')) +
        (await metric(restarted, 'notifier_circuits_opened_total')),
    ).toBe(0);
    expect(failing.arrivals).toHaveLength(3);
  });
});
