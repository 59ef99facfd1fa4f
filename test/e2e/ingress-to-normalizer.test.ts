import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import pino from 'pino';
import { Topics, type CanonicalTopic } from '@ampflow/contracts';
import { createMetricsRegistry } from '@ampflow/observability';
import {
  collectRecords,
  fixtureBytes,
  smartcarHeaders,
  svixHeaders,
  testEndpoints,
  testKafka,
  uniqueName,
  type RecordCollector,
} from '@ampflow/testing';
import { createIngressApp } from '../../services/ingress/src/app';
import { createRedisSeenStore } from '../../services/ingress/src/seen-store';
import { createNormalizerApp } from '../../services/normalizer/src/app';

/** Moved from the normalizer's integration tests: it spans the ingress and the normalizer. */
const logger = pino({ level: 'silent' });
const kafka = testKafka();
const stops: Array<() => Promise<void>> = [];
const collectors: RecordCollector[] = [];
afterEach(async () => {
  await Promise.all(collectors.splice(0).map((c) => c.stop()));
  for (const stop of stops.splice(0).reverse()) await stop();
});

/** What the normalizer reported as fatal (a stuck consumer); the test expects none. */
const fatalErrors: unknown[] = [];
afterEach(() => {
  expect(fatalErrors.splice(0)).toEqual([]);
});

async function startNormalizer() {
  const prefix = uniqueName('n');
  const rawTopics = { smartcar: `${prefix}.raw.smartcar`, telematica: `${prefix}.raw.telematica` };
  const topicName = (t: CanonicalTopic) => `${prefix}.${t}`;
  const app = createNormalizerApp({
    settings: {
      httpPort: 0,
      schemaRegistryUrl: testEndpoints().schemaRegistryUrl,
      shutdownDrainMs: 5_000,
      consumerGroupId: uniqueName('normalizer'),
      canonicalTopicPartitions: 3,
      rawTopics: [rawTopics.smartcar, rawTopics.telematica],
      canonicalTopicName: topicName,
      initialRetryMs: 100,
      maxRetryMs: 1_000,
      sessionTimeoutMs: 6_000,
    },
    kafka,
    logger,
    registry: createMetricsRegistry('normalizer', { defaultMetrics: false }),
    onFatal: (error) => fatalErrors.push(error),
  });
  await app.start();
  stops.push(() => app.stop());
  return { app, rawTopics, topicName };
}

async function collect(topics: string[]) {
  const c = await collectRecords(kafka, topics);
  collectors.push(c);
  return c;
}

const registry = () => new SchemaRegistry({ host: testEndpoints().schemaRegistryUrl });

describe('ingress to normalizer', () => {
  it('end to end: a signed seed payload posted to the ingress arrives decoded on the canonical topic', async () => {
    const n = await startNormalizer();
    const amt = 'e2e-token';
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const ingress = createIngressApp({
      settings: {
        httpPort: 0,
        httpHost: '127.0.0.1',
        smartcarManagementToken: amt,
        telematicaWebhookSecrets: [secret],
        maxBodyBytes: 262_144,
        kafkaPublishTimeoutMs: 5_000,
        rawTopicPartitions: 3,
        shutdownDrainMs: 2_000,
        topics: n.rawTopics,
      },
      kafka,
      seenStore: createRedisSeenStore({
        url: testEndpoints().redisUrl,
        ttlSeconds: 600,
        namespace: uniqueName('seen'),
      }),
      logger,
      registry: createMetricsRegistry('ingress', { defaultMetrics: false }),
      onFatal: (error) => {
        throw error;
      },
    });
    await ingress.start();
    stops.push(() => ingress.stop());
    const base = `http://127.0.0.1:${ingress.port()}`;
    const sc = fixtureBytes('smartcar/vehicle-state-guide.json');
    const tm = fixtureBytes('telematica/vehicle-charging-status.json');
    expect(
      (
        await fetch(`${base}/webhooks/smartcar`, {
          method: 'POST',
          body: new Uint8Array(sc),
          headers: smartcarHeaders(sc, amt),
        })
      ).status,
    ).toBe(200);
    expect(
      (
        await fetch(`${base}/webhooks/telematica`, {
          method: 'POST',
          body: new Uint8Array(tm),
          headers: svixHeaders(tm, secret, { id: 'msg_e2e' }),
        })
      ).status,
    ).toBe(200);

    const c = await collect([n.topicName(Topics.vehicleTelemetry)]);
    const records = await c.waitFor(2);
    const decoded = await Promise.all(
      records.map(async (r) => ({ key: r.key, value: await registry().decode(r.value!) })),
    );
    const smartcar = decoded.find((d) => d.value.provider === 'smartcar');
    const telematica = decoded.find((d) => d.value.provider === 'telematica');
    expect(smartcar).toMatchObject({
      key: 'smartcar:829e30ab-5a13-40b5-9f8a-8538af86ed95',
      value: {
        eventId: 'smartcar:a7738a15-7ee2-40b3-9815-823d146230cd',
        vehicleId: 'smartcar:829e30ab-5a13-40b5-9f8a-8538af86ed95',
        userId: 'smartcar:deee49b6-d638-4be4-82dc-121ea613eed9',
        occurredAt: 1754365413366,
        sourceEventType: 'VEHICLE_STATE',
        isCharging: true,
        triggers: ['Charge.IsCharging'],
        vehicle: { make: 'Tesla', model: 'Model 3', year: 2020 },
      },
    });
    expect(telematica).toMatchObject({
      key: 'telematica:641aeef260d202219c22f03b',
      value: {
        eventId: 'telematica:msg_e2e',
        occurredAt: Date.parse('2023-06-29T11:29:11.815Z'),
        isCharging: true,
        chargingState: 'CHARGING',
        stateOfChargePercent: 77,
        rangeKm: 216,
        location: { latitude: 12.345678, longitude: 7.3321 },
      },
    });
    expect(Math.abs(smartcar!.value.receivedAt - Date.now())).toBeLessThan(60_000);
  });
});
