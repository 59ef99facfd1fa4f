import { existsSync } from 'node:fs';
import { Topics } from '@ampflow/contracts';
import { eventually, uniqueName } from '@ampflow/testing';
import { MAIN, admin, startChild, waitReady, type Child } from './child-notifier';
import { telemetry } from './fixtures';
import { createSourceProducer, deliveredIds, type Sink } from './harness';
import { maxInOneSecond, measuredSink } from './measured-sink';

/**
 * Issue 17: an endpoint's limits hold when one of two notifier processes is SIGKILLed mid-run. Its partitions
 * move to the survivor once the group notices (the session timeout, 10 s), whose handover then waits out the
 * dead member's attempts (they died with it; the receiver may still be answering them). Every message arrives
 * (at least once, same ids), the throttled endpoint never gets more than its rate allows in any 1 s window and
 * the slow one never more than its concurrency at once. The BUILT notifier runs (`npm run build`).
 */
jest.setTimeout(240_000);

const N = 50;
const RATE = 5;
const CONCURRENCY = 3;

/** Webhooks a notifier process delivered (its /metrics). */
async function deliveredBy(child: Child): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${child.port}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith('notifier_deliveries_total{') && line.includes('outcome="delivered"'))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

it('keeps the per-endpoint limits and loses nothing when one of two notifiers is SIGKILLed', async () => {
  expect(existsSync(MAIN)).toBe(true);
  const prefix = `${uniqueName('ntlimkill')}.`;
  const groupId = uniqueName('ntlimkill-group');
  const namespace = `${prefix}notifier`;
  const env = {
    NOTIFIER_ENDPOINT_CONCURRENCY: String(CONCURRENCY),
    NOTIFIER_REQUEST_TIMEOUT_MS: '2000',
    NOTIFIER_HANDOVER_MS: '3000',
    NOTIFIER_DELIVERY_TOPIC_PARTITIONS: '6',
  };
  const throttled = await measuredSink(0);
  const slow = await measuredSink(400);
  const source = await createSourceProducer(prefix);
  const children: Child[] = [];
  try {
    children.push(await startChild(prefix, groupId, namespace, env));
    await waitReady(children[0]!);
    for (const [sink, fields] of [
      [throttled.sink, { throttleRate: RATE }],
      [slow.sink, {}],
    ] as const) {
      const created = await admin(children[0]!, 'POST', '/v1/endpoints', {
        url: sink.url,
        eventTypes: ['vehicle.telemetry'],
        ...fields,
      });
      expect(created.status).toBe(201);
      sink.setSecret(created.body.secret);
    }
    children.push(await startChild(prefix, groupId, namespace, env));
    await waitReady(children[1]!);

    const vehicles = Array.from({ length: 10 }, () => `telematica:${uniqueName('v')}`);
    await source.produce(
      Topics.vehicleTelemetry,
      Array.from({ length: N }, (_, i) => telemetry(vehicles[i % vehicles.length]!, i)),
    );
    await eventually(() => throttled.arrivals.length >= 10, 'the throttled endpoint busy', 90_000);
    // The process that sends to at least one of the endpoints (it delivered something) is the one killed.
    const delivered = await Promise.all(children.map((child) => deliveredBy(child)));
    const victim = children[delivered[0]! >= delivered[1]! ? 0 : 1]!;
    expect(Math.max(...delivered)).toBeGreaterThan(0);
    victim.proc.kill('SIGKILL');
    const atKill = { throttled: throttled.arrivals.length, slow: slow.arrivals.length };

    const distinct = (sink: Sink) => new Set(deliveredIds(sink)).size;
    await eventually(
      () => distinct(throttled.sink) >= N && distinct(slow.sink) >= N,
      'every message at both endpoints after the SIGKILL',
      180_000,
      200,
    );
    process.stderr.write(
      `[notifier limits SIGKILL] at the kill ${atKill.throttled} and ${atKill.slow} requests; in all ` +
        `${throttled.arrivals.length} to the rate-${RATE} endpoint (at most ${maxInOneSecond(throttled.arrivals)} ` +
        `in any 1 s window) and ${slow.arrivals.length} to the slow one (at most ${slow.maxInFlight} at once)\n`,
    );
    expect(atKill.throttled).toBeLessThan(N);
    expect(maxInOneSecond(throttled.arrivals)).toBeLessThanOrEqual(RATE + 1);
    expect(slow.maxInFlight).toBeLessThanOrEqual(CONCURRENCY);
    for (const { sink } of [throttled, slow]) {
      expect(sink.unverified).toBe(0);
      expect(new Set(sink.received.map((h) => h.id)).size).toBe(N);
    }
    expect(new Set(deliveredIds(throttled.sink))).toEqual(new Set(deliveredIds(slow.sink)));
  } finally {
    for (const child of children) child.proc.kill('SIGKILL');
    await source.stop();
    await throttled.sink.close();
    await slow.sink.close();
  }
});
