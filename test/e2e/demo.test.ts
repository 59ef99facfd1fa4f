import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import Redis from 'ioredis';
import pino from 'pino';
import { rawTopic, Topics } from '@ampflow/contracts';
import { createMetricsRegistry } from '@ampflow/observability';
import { testEndpoints, testKafka, uniqueName } from '@ampflow/testing';
import type { DemoConfig } from '../../packages/demo/src/config';
import { DemoExit, NOT_RUNNING_MESSAGE, runDemo } from '../../packages/demo/src/demo';
import { createIngressApp } from '../../services/ingress/src/app';
import { createRedisSeenStore } from '../../services/ingress/src/seen-store';
import { createNormalizerApp } from '../../services/normalizer/src/app';
import { createNotifierApp } from '../../services/notifier/src/app';
import { createAggregatorApp } from '../../services/session-aggregator/src/app';
import { DEFAULT_REDUCER_SETTINGS } from '../../services/session-aggregator/src/session-reducer';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const AMT = 'e2e-demo-management-token';
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const ADMIN_TOKEN = 'e2e-demo-admin-token-0123456789';

/** The four services in this process on their own topics, consumer groups and Redis namespaces. */
async function startPlatform() {
  const kafka = testKafka();
  const prefix = `${uniqueName('demo')}.`;
  const { schemaRegistryUrl, redisUrl } = testEndpoints();
  const metrics = (service: string) => createMetricsRegistry(service, { defaultMetrics: false });
  const fatal = (error: unknown) => logger.error({ err: error }, 'a service reported itself stuck');
  const normalizer = createNormalizerApp({
    settings: {
      httpPort: 0,
      schemaRegistryUrl,
      shutdownDrainMs: 2_000,
      consumerGroupId: `${prefix}normalizer`,
      canonicalTopicPartitions: 3,
      rawTopics: [prefix + rawTopic('smartcar'), prefix + rawTopic('telematica')],
      canonicalTopicName: (topic) => prefix + topic,
      sessionTimeoutMs: 6_000,
    },
    kafka,
    logger,
    registry: metrics('normalizer'),
    onFatal: fatal,
  });
  const aggregator = createAggregatorApp({
    settings: {
      ...DEFAULT_REDUCER_SETTINGS,
      httpPort: 0,
      schemaRegistryUrl,
      shutdownDrainMs: 2_000,
      consumerGroupId: `${prefix}aggregator`,
      sessionsTopicPartitions: 3,
      sweepIntervalMs: 3_600_000,
      stateTtlSeconds: 600,
      redisNamespace: `${prefix}sessions`,
      telemetryTopic: prefix + Topics.vehicleTelemetry,
      sessionsTopic: prefix + Topics.chargingSessions,
      sessionTimeoutMs: 6_000,
    },
    kafka,
    redis: new Redis(redisUrl, { lazyConnect: true }),
    logger,
    registry: metrics('aggregator'),
    onFatal: fatal,
  });
  const notifier = createNotifierApp({
    settings: {
      httpPort: 0,
      httpHost: '127.0.0.1',
      schemaRegistryUrl,
      adminToken: ADMIN_TOKEN,
      shutdownDrainMs: 2_000,
      groupId: `${prefix}notifier`,
      topicPrefix: prefix,
      redisNamespace: `${prefix}notifier`,
      retryTopicPartitions: 2,
      retryScheduleMs: [0, 200, 400, 800],
      retryAfterMaxMs: 5_000,
      jitterRatio: 0,
      // As `npm start` configures it: the demo's sink is an http:// endpoint on loopback.
      allowedNetworks: ['127.0.0.0/8'],
      allowHttp: true,
      requestTimeoutMs: 2_000,
      endpointConcurrency: 10,
      maxQueuePerEndpoint: 1_000,
      secretRotationOverlapMs: 60_000,
      disableAfterFailingMs: 3_600_000,
      circuitFailures: 1_000,
      circuitCooldownMs: 1_000,
      attemptRetentionMs: 3_600_000,
      sessionTimeoutMs: 6_000,
    },
    kafka,
    redis: new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 3 }),
    logger,
    registry: metrics('notifier'),
    onFatal: fatal,
  });
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
      topics: { smartcar: prefix + rawTopic('smartcar'), telematica: prefix + rawTopic('telematica') },
    },
    kafka,
    seenStore: createRedisSeenStore({ url: redisUrl, ttlSeconds: 600, namespace: `${prefix}seen` }),
    logger,
    registry: metrics('ingress'),
    onFatal: fatal,
  });
  await normalizer.start();
  await aggregator.start();
  await notifier.start();
  await ingress.start();
  const url = (app: { port(): number }) => `http://127.0.0.1:${app.port()}`;
  const config: DemoConfig = {
    KAFKA_BROKERS: testEndpoints().kafkaBrokers,
    KAFKA_TOPIC_PREFIX: prefix,
    SCHEMA_REGISTRY_URL: schemaRegistryUrl,
    DEMO_INGRESS_URL: url(ingress),
    DEMO_NORMALIZER_URL: url(normalizer),
    DEMO_AGGREGATOR_URL: url(aggregator),
    DEMO_NOTIFIER_URL: url(notifier),
    DEMO_TIMEOUT_MS: 60_000,
    LOG_LEVEL: 'silent',
    SMARTCAR_MANAGEMENT_TOKEN: AMT,
    TELEMATICA_WEBHOOK_SECRET: SECRET,
    NOTIFIER_ADMIN_TOKEN: ADMIN_TOKEN,
  };
  return {
    config,
    async stop() {
      await ingress.stop();
      await notifier.stop();
      await aggregator.stop();
      await normalizer.stop();
    },
  };
}

/** Waits until every service says it is ready, as `npm start` does before it prints its URLs. */
async function waitReady(config: DemoConfig) {
  const urls = [
    config.DEMO_INGRESS_URL,
    config.DEMO_NORMALIZER_URL,
    config.DEMO_AGGREGATOR_URL,
    config.DEMO_NOTIFIER_URL,
  ];
  for (let attempt = 0; ; attempt += 1) {
    const statuses = await Promise.all(urls.map((u) => fetch(`${u}/readyz`).then((r) => r.status)));
    if (statuses.every((s) => s === 200)) return;
    if (attempt >= 120) throw new Error(`services not ready: ${statuses.join(', ')}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function captured() {
  let text = '';
  return {
    stream: { write: (chunk: string) => (text += chunk), isTTY: false },
    text: () => text,
  };
}

it('runs the scenario against the four services and verifies every record, session and webhook', async () => {
  const platform = await startPlatform();
  try {
    await waitReady(platform.config);
    const out = captured();
    const code = await runDemo(
      platform.config,
      { stdout: out.stream, logger },
      { runId: uniqueName('r').slice(-8) },
    );
    const text = out.text();
    // The output says what went wrong when the code is not 0.
    expect({ code, text }).toEqual({ code: DemoExit.ok, text: expect.stringContaining('OK: ') });
    expect(text).toContain('OK: 18/18 records, 8/8 session changes, 30/30 verified webhooks, as expected.');
    // The duplicate was answered 200 "duplicate"; the late reading is marked in the records table.
    expect(text).toMatch(/18 +telematica +soc 55% again \(same event id\) +msg_demo\S+ +200 duplicate/);
    expect(text).toContain('← late: older than a reading already applied');
    expect(text).toMatch(/ENDED v4 .* FULLY_CHARGED/);
    expect(text).toMatch(/ENDED v4 .* CHARGING_STOPPED/);
    expect(text).toMatch(/device\.connected +telematica:\S+ +BMW X2 xDrive25e 2022/);

    // The demo endpoint is gone afterwards.
    const list = await fetch(`${platform.config.DEMO_NOTIFIER_URL}/v1/endpoints`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(await list.json()).toEqual({ data: [] });
  } finally {
    await platform.stop();
  }
});

it('exits 3 with a clear message when the platform is not running', async () => {
  // A port that was just free: nothing answers there.
  const port = await new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port: p } = server.address() as AddressInfo;
      server.close(() => resolve(p));
    });
  });
  const closed = `http://127.0.0.1:${port}`;
  const out = captured();
  const config = {
    DEMO_INGRESS_URL: closed,
    DEMO_NORMALIZER_URL: closed,
    DEMO_AGGREGATOR_URL: closed,
    DEMO_NOTIFIER_URL: closed,
  } as DemoConfig;
  expect(await runDemo(config, { stdout: out.stream, logger })).toBe(DemoExit.platformDown);
  expect(out.text()).toContain(NOT_RUNNING_MESSAGE);
  expect(out.text()).toContain(`ingress (${closed}): no answer`);
});
