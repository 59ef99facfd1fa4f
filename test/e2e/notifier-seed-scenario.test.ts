import Redis from 'ioredis';
import pino from 'pino';
import { Topics, type CanonicalTopic } from '@ampflow/contracts';
import { createMetricsRegistry } from '@ampflow/observability';
import {
  eventually,
  fixtureBytes,
  fixtureJson,
  smartcarHeaders,
  svixHeaders,
  testEndpoints,
  testKafka,
  uniqueName,
} from '@ampflow/testing';
import { createIngressApp } from '../../services/ingress/src/app';
import { createRedisSeenStore } from '../../services/ingress/src/seen-store';
import { createNormalizerApp } from '../../services/normalizer/src/app';
import { createAggregatorApp } from '../../services/session-aggregator/src/app';
import { DEFAULT_REDUCER_SETTINGS } from '../../services/session-aggregator/src/session-reducer';
import { registerSink, startNotifier, startSink } from '../../services/notifier/test/harness';

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
  const kafka = testKafka();
  const prefix = uniqueName('e2en');
  const raw = { smartcar: `${prefix}.raw.smartcar`, telematica: `${prefix}.raw.telematica` };
  const topicName = (t: CanonicalTopic) => `${prefix}.${t}`;
  const { schemaRegistryUrl, redisUrl } = testEndpoints();
  const metrics = () => createMetricsRegistry('e2e', { defaultMetrics: false });
  const ingress = createIngressApp({
    settings: {
      httpPort: 0,
      httpHost: '127.0.0.1',
      smartcarManagementToken: AMT,
      telematicaWebhookSecrets: [SECRET],
      maxBodyBytes: 262_144,
      kafkaPublishTimeoutMs: 5_000,
      rawTopicPartitions: 3,
      shutdownDrainMs: 2_000,
      topics: raw,
    },
    kafka,
    seenStore: createRedisSeenStore({ url: redisUrl, ttlSeconds: 600, namespace: uniqueName('seen') }),
    logger,
    registry: metrics(),
    onFatal: (error) => logger.error({ err: error }, 'ingress reported itself stuck'),
  });
  const normalizer = createNormalizerApp({
    settings: {
      httpPort: 0,
      schemaRegistryUrl,
      shutdownDrainMs: 2_000,
      consumerGroupId: uniqueName('normalizer'),
      canonicalTopicPartitions: 3,
      rawTopics: [raw.smartcar, raw.telematica],
      canonicalTopicName: topicName,
      sessionTimeoutMs: 6_000,
    },
    kafka,
    logger,
    registry: metrics(),
    onFatal: (error) => logger.error({ err: error }, 'normalizer reported itself stuck'),
  });
  const aggregator = createAggregatorApp({
    settings: {
      ...DEFAULT_REDUCER_SETTINGS,
      httpPort: 0,
      schemaRegistryUrl,
      shutdownDrainMs: 2_000,
      consumerGroupId: uniqueName('aggregator'),
      sessionsTopicPartitions: 3,
      sweepIntervalMs: 3_600_000,
      stateTtlSeconds: 600,
      redisNamespace: uniqueName('sessions'),
      telemetryTopic: topicName(Topics.vehicleTelemetry),
      sessionsTopic: topicName(Topics.chargingSessions),
      sessionTimeoutMs: 6_000,
    },
    kafka,
    redis: new Redis(redisUrl, { lazyConnect: true }),
    logger,
    registry: metrics(),
    onFatal: (error) => logger.error({ err: error }, 'aggregator reported itself stuck'),
  });
  const notifier = await startNotifier({}, { prefix: `${prefix}.` });
  const sink = await startSink();
  try {
    await normalizer.start();
    await aggregator.start();
    await ingress.start();
    await registerSink(notifier, sink, {
      eventTypes: ['charging_session.started', 'charging_session.ended'],
    });

    const base = `http://127.0.0.1:${ingress.port()}`;
    const smartcar = (body: Buffer) =>
      fetch(`${base}/webhooks/smartcar`, {
        method: 'POST',
        body: new Uint8Array(body),
        headers: smartcarHeaders(body, AMT),
      });
    const telematica = (body: Buffer) =>
      fetch(`${base}/webhooks/telematica`, {
        method: 'POST',
        body: new Uint8Array(body),
        headers: svixHeaders(body, SECRET),
      });
    // The same scenario as seed-scenario.test.ts: a Smartcar vehicle starts charging and is full an hour
    // later; a Telematica vehicle is charging, then unplugged.
    expect((await smartcar(fixtureBytes('smartcar/vehicle-state-guide.json'))).status).toBe(200);
    expect((await smartcar(fixtureBytes('smartcar/vehicle-state-responses.json'))).status).toBe(200);
    expect((await telematica(fixtureBytes('telematica/vehicle-charging-status.json'))).status).toBe(200);
    const unplugged = fixtureJson<{
      currentState: string;
      vehicleState: {
        batteryState: { isPlugged: boolean; isCharging: boolean; lastUpdated: string; soc: number };
      };
    }>('telematica/vehicle-plug-status.json');
    unplugged.currentState = 'Unplugged';
    Object.assign(unplugged.vehicleState.batteryState, {
      isPlugged: false,
      isCharging: false,
      soc: 81,
      lastUpdated: '2023-06-29T12:41:11.815Z',
    });
    expect((await telematica(Buffer.from(JSON.stringify(unplugged)))).status).toBe(200);

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
    await ingress.stop();
    await aggregator.stop();
    await normalizer.stop();
  }
});
