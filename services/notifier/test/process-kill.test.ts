import { existsSync } from 'node:fs';
import { Topics } from '@ampflow/contracts';
import { eventually, uniqueName } from '@ampflow/testing';
import { MAIN, admin, startChild, waitReady, type Child } from './child-notifier';
import { telemetry } from './fixtures';
import { createSourceProducer, deliveredIds, startSink } from './harness';

/**
 * Issue 10, Tests: SIGKILL of the notifier in the middle of retries loses nothing. The BUILT notifier runs as a
 * child process (as `node` runs it in production); every message fails its first attempt, the process is
 * killed while most messages wait in the retry tiers, and a new process (same group, same prefix) delivers
 * every one. Duplicates (at-least-once) are counted and reported, not forbidden.
 */
jest.setTimeout(240_000);

const N = 200;
it('loses no message when the notifier is SIGKILLed in the middle of retries', async () => {
  expect(existsSync(MAIN)).toBe(true); // built with `npm run build`
  const prefix = `${uniqueName('ntkill')}.`;
  const groupId = uniqueName('ntkill-group');
  const namespace = `${prefix}notifier`;
  const attempted = new Set<string>();
  // Fails the first attempt of every message; later attempts (retries, re-deliveries) succeed.
  const sink = await startSink((hook, _q, res) => {
    const first = !attempted.has(hook.id);
    attempted.add(hook.id);
    res.writeHead(first ? 500 : 204).end();
  });
  const source = await createSourceProducer(prefix);
  const children: Child[] = [];
  try {
    children.push(await startChild(prefix, groupId, namespace));
    await waitReady(children[0]!);
    const created = await admin(children[0]!, 'POST', '/v1/endpoints', {
      url: sink.url,
      eventTypes: ['vehicle.telemetry'],
    });
    expect(created.status).toBe(201);
    sink.setSecret(created.body.secret);

    const vehicles = Array.from({ length: 10 }, () => `telematica:${uniqueName('v')}`);
    await source.produce(
      Topics.vehicleTelemetry,
      Array.from({ length: N }, (_, i) => telemetry(vehicles[i % vehicles.length]!, i)),
    );
    const distinctDelivered = () => new Set(deliveredIds(sink)).size;
    await eventually(() => distinctDelivered() >= 40, 'some retries delivered', 60_000);
    children[0]!.proc.kill('SIGKILL');
    const deliveredAtKill = distinctDelivered();
    const attemptedAtKill = attempted.size;

    children.push(await startChild(prefix, groupId, namespace));
    await waitReady(children[1]!);
    await eventually(
      () => attempted.size >= N && distinctDelivered() >= N,
      'every message delivered after the SIGKILL',
      120_000,
      200,
    ).catch(() => undefined);
    const delivered = deliveredIds(sink);
    const unique = new Set(delivered);
    const missing = [...attempted].filter((id) => !unique.has(id));
    process.stderr.write(
      `[notifier process-kill] ${N} events in, ${attempted.size} message ids seen, ${unique.size} delivered ` +
        `with a 2xx (${delivered.length - unique.size} duplicate 2xx deliveries); at the SIGKILL ` +
        `${deliveredAtKill} were delivered and ${attemptedAtKill} attempted\n`,
    );
    expect(deliveredAtKill).toBeLessThan(N);
    expect({ ids: attempted.size, missing, unverified: sink.unverified }).toEqual({
      ids: N,
      missing: [],
      unverified: 0,
    });
  } finally {
    for (const child of children) child.proc.kill('SIGKILL');
    await source.stop();
    await sink.close();
  }
});
