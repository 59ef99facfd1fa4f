import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import Redis from 'ioredis';
import pino from 'pino';
import { Topics, type CanonicalTopic, type ChargingSession } from '@ampflow/contracts';
import { createMetricsRegistry } from '@ampflow/observability';
import {
  collectRecords,
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

const logger = pino({ level: 'silent' });
const AMT = 'e2e-sessions-token';
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

it("the seeds' charging scenario posted to the ingress ends in STARTED and ENDED sessions for both providers", async () => {
  const kafka = testKafka();
  const prefix = uniqueName('e2e');
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
    onFatal: (error) => {
      throw error;
    },
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
  await normalizer.start();
  await aggregator.start();
  await ingress.start();
  const out = await collectRecords(kafka, [topicName(Topics.chargingSessions)]);
  try {
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

    // Smartcar: the guide's "started charging" event, then the same vehicle fully charged an hour later.
    expect((await smartcar(fixtureBytes('smartcar/vehicle-state-guide.json'))).status).toBe(200);
    expect((await smartcar(fixtureBytes('smartcar/vehicle-state-responses.json'))).status).toBe(200);
    // Telematica: the catalogue's charging-status (Charging), then the plug-status turning Unplugged later.
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

    await out.waitFor(4, 30_000);
    await new Promise((r) => setTimeout(r, 500));
    const registry = new SchemaRegistry({ host: schemaRegistryUrl });
    const sessions = (await Promise.all(
      out.records.map((r) => registry.decode(r.value!)),
    )) as ChargingSession[];
    const view = sessions
      .map((s) => [
        s.vehicleId,
        s.change,
        s.endReason,
        s.startedAt,
        s.endedAt,
        s.socStartPercent,
        s.socEndPercent,
      ])
      .sort(
        (a, b) =>
          String(a[0]).localeCompare(String(b[0])) || Number(a[1] === 'ENDED') - Number(b[1] === 'ENDED'),
      );
    expect(view).toEqual([
      ['smartcar:829e30ab-5a13-40b5-9f8a-8538af86ed95', 'STARTED', null, 1754365413366, null, null, null],
      [
        'smartcar:829e30ab-5a13-40b5-9f8a-8538af86ed95',
        'ENDED',
        'FULLY_CHARGED',
        1754365413366,
        1754369013366,
        null,
        80,
      ],
      [
        'telematica:641aeef260d202219c22f03b',
        'STARTED',
        null,
        Date.parse('2023-06-29T11:29:11.815Z'),
        null,
        77,
        77,
      ],
      [
        'telematica:641aeef260d202219c22f03b',
        'ENDED',
        'UNPLUGGED',
        Date.parse('2023-06-29T11:29:11.815Z'),
        Date.parse('2023-06-29T12:41:11.815Z'),
        77,
        81,
      ],
    ]);
    expect(new Set(sessions.map((s) => s.sessionId)).size).toBe(2);
  } finally {
    await out.stop();
    await ingress.stop();
    await aggregator.stop();
    await normalizer.stop();
  }
});
