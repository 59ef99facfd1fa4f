import pino from 'pino';
import { eventually, uniqueName } from '@ampflow/testing';
import { registerSink, startNotifier, startSink } from '../../services/notifier/test/harness';
import { createInProcessPipeline, postSeedScenario } from './pipeline';

/**
 * Issue 10, Tests: the seeds' charging scenario posted to the ingress reaches a healthy endpoint as verified
 * (svix `Webhook.verify` in the sink), enriched `charging_session.started` and `.ended`: ingress, normalizer,
 * session aggregator and notifier in-process on one topic prefix.
 */
jest.setTimeout(120_000);

const logger = pino({ level: 'silent' });
const AMT = 'e2e-notifier-token';
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

it("the seeds' charging scenario reaches a customer endpoint as verified, enriched session webhooks", async () => {
  const prefix = uniqueName('e2en');
  const pipeline = createInProcessPipeline({
    prefix,
    managementToken: AMT,
    telematicaSecret: SECRET,
    logger,
  });
  const notifier = await startNotifier({}, { prefix: `${prefix}.` });
  const sink = await startSink();
  try {
    await pipeline.start();
    await registerSink(notifier, sink, {
      eventTypes: ['charging_session.started', 'charging_session.ended'],
    });
    // The same scenario as seed-scenario.test.ts.
    expect(await postSeedScenario(pipeline)).toEqual([200, 200, 200, 200]);

    await eventually(() => sink.received.length >= 4, 'four session webhooks at the endpoint', 60_000);
    expect(sink.unverified).toBe(0);
    const view = sink.received
      .map((h) => [h.body.data.vehicleId, h.type] as const)
      .sort((a, b) => a[0].localeCompare(b[0]) || a[1].localeCompare(b[1]));
    expect(view).toEqual([
      ['smartcar:829e30ab-5a13-40b5-9f8a-8538af86ed95', 'charging_session.ended'],
      ['smartcar:829e30ab-5a13-40b5-9f8a-8538af86ed95', 'charging_session.started'],
      ['telematica:641aeef260d202219c22f03b', 'charging_session.ended'],
      ['telematica:641aeef260d202219c22f03b', 'charging_session.started'],
    ]);
    // Enriched from the providers' own vehicle objects in the seed payloads.
    const vehicleOf = (id: string) =>
      sink.received.find((h) => h.body.data.vehicleId === id && h.type === 'charging_session.ended')!.body
        .data.vehicle;
    expect(vehicleOf('smartcar:829e30ab-5a13-40b5-9f8a-8538af86ed95')).toMatchObject({
      make: 'Tesla',
      model: 'Model 3',
      year: 2020,
    });
    expect(vehicleOf('telematica:641aeef260d202219c22f03b')).toMatchObject({
      make: 'BMW',
      model: 'X2 xDrive25e',
      year: 2022,
      nickname: 'My BMW X2',
    });
    // The Smartcar payload names its user: every Smartcar webhook carries it.
    for (const hook of sink.received.filter((h) => h.body.data.provider === 'smartcar'))
      expect(hook.body.data.userId).toBe('smartcar:deee49b6-d638-4be4-82dc-121ea613eed9');
    const ended = sink.received.find(
      (h) =>
        h.body.data.vehicleId === 'telematica:641aeef260d202219c22f03b' &&
        h.type === 'charging_session.ended',
    )!;
    expect(ended.body.data).toMatchObject({ socEndPercent: 81, endReason: 'UNPLUGGED' });
    expect(ended.headers['svix-id']).toBe(ended.id);
    expect(new Set(sink.received.map((h) => h.id)).size).toBe(4);
  } finally {
    await sink.close();
    await notifier.stop();
    await pipeline.stop();
  }
});
