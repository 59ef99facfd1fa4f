import Redis from 'ioredis';
import type { Logger } from 'pino';
import { Topics, type CanonicalTopic } from '@ampflow/contracts';
import { createMetricsRegistry } from '@ampflow/observability';
import {
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

/** Ingress, normalizer and session aggregator in-process on one topic prefix (`<prefix>.`), fast settings. */
export interface InProcessPipeline {
  kafka: ReturnType<typeof testKafka>;
  topicName(topic: CanonicalTopic): string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Base URLs of the services' HTTP servers (after `start`). */
  urls(): { ingress: string; normalizer: string; aggregator: string };
  /** Signs and posts a provider webhook to the ingress; resolves to the HTTP status. */
  post(provider: 'smartcar' | 'telematica', body: Buffer): Promise<number>;
}

export function createInProcessPipeline(options: {
  prefix: string;
  managementToken: string;
  telematicaSecret: string;
  logger: Logger;
}): InProcessPipeline {
  const { prefix, logger } = options;
  const kafka = testKafka();
  const raw = { smartcar: `${prefix}.raw.smartcar`, telematica: `${prefix}.raw.telematica` };
  const topicName = (t: CanonicalTopic) => `${prefix}.${t}`;
  const { schemaRegistryUrl, redisUrl } = testEndpoints();
  const metrics = () => createMetricsRegistry('e2e', { defaultMetrics: false });
  const stuck = (service: string) => (error: unknown) =>
    logger.error({ err: error }, `${service} reported itself stuck`);
  const ingress = createIngressApp({
    settings: {
      httpPort: 0,
      httpHost: '127.0.0.1',
      smartcarManagementToken: options.managementToken,
      telematicaWebhookSecrets: [options.telematicaSecret],
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
    onFatal: stuck('ingress'),
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
    onFatal: stuck('normalizer'),
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
    onFatal: stuck('aggregator'),
  });
  return {
    kafka,
    topicName,
    async start() {
      await normalizer.start();
      await aggregator.start();
      await ingress.start();
    },
    async stop() {
      await ingress.stop();
      await aggregator.stop();
      await normalizer.stop();
    },
    urls() {
      const url = (app: { port(): number }) => `http://127.0.0.1:${app.port()}`;
      return { ingress: url(ingress), normalizer: url(normalizer), aggregator: url(aggregator) };
    },
    async post(provider, body) {
      const headers =
        provider === 'smartcar'
          ? smartcarHeaders(body, options.managementToken)
          : svixHeaders(body, options.telematicaSecret);
      const response = await fetch(`http://127.0.0.1:${ingress.port()}/webhooks/${provider}`, {
        method: 'POST',
        body: new Uint8Array(body),
        headers,
      });
      return response.status;
    },
  };
}

/**
 * The seeds' charging scenario: the Smartcar guide's "started charging" event, then the same vehicle fully
 * charged an hour later; Telematica's charging-status (Charging), then its plug-status turning Unplugged later.
 * Resolves to the ingress's answers, in order.
 */
export async function postSeedScenario(pipeline: InProcessPipeline): Promise<number[]> {
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
  return [
    await pipeline.post('smartcar', fixtureBytes('smartcar/vehicle-state-guide.json')),
    await pipeline.post('smartcar', fixtureBytes('smartcar/vehicle-state-responses.json')),
    await pipeline.post('telematica', fixtureBytes('telematica/vehicle-charging-status.json')),
    await pipeline.post('telematica', Buffer.from(JSON.stringify(unplugged))),
  ];
}
