import type { Kafka } from 'kafkajs';
import { rawTopic, topicConfigEntries, type Provider } from '@ampflow/contracts';
import { createBrokerProbe, createReliableProducer, createWorkHealth, ensureTopics } from '@ampflow/kafka';
import type { Logger, Registry } from '@ampflow/observability';
import {
  startHttpServer,
  type HttpServerLimits,
  type RunningHttpServer,
  type Service,
} from '@ampflow/runtime';
import { createHttpApp, rawBodyLimits } from '@ampflow/runtime/http';
import { effectiveBodyLimitBytes } from './body-limit';
import { createByteBudget } from './inflight-bytes';
import { createIngressMetrics } from './metrics';
import { createRawPublisher } from './raw-publisher';
import { DEFAULT_REQUEST_DEADLINE_MS } from './request-deadline';
import type { SeenStore } from './seen-store';
import { createTelematicaVerifier } from './webhook-intake';
import { createWebhookRoutes } from './webhook-routes';

export interface IngressSettings {
  httpPort: number;
  httpHost: string;
  smartcarManagementToken: string;
  telematicaWebhookSecrets: readonly string[];
  maxBodyBytes: number;
  /**
   * Bound on the request-body bytes held at once, reserved before a body is read (its content-length, or
   * the body limit when unknown) and returned when the answer is sent; beyond it requests get 503
   * `ingress_busy`. Unset: no bound (the service always sets it, `INGRESS_MAX_INFLIGHT_BYTES`, default 64 MiB).
   */
  maxInflightBytes?: number;
  kafkaPublishTimeoutMs: number;
  /** The producer's linger (`KAFKA_LINGER_MS`); unset or 0: a record into an idle producer is sent at once. */
  kafkaLingerMs?: number;
  /** The producer's request pacing (`KAFKA_REQUEST_INTERVAL_MS`); unset or 0: off. */
  kafkaRequestIntervalMs?: number;
  /**
   * Time from a webhook's arrival to its answer (body read, verification, duplicate check, Kafka): past it,
   * 503 `deadline_exceeded` (`INGRESS_REQUEST_DEADLINE_MS`). Default 5 s.
   */
  requestDeadlineMs?: number;
  /** Header and request timeouts, keep-alive and the connection limit of the HTTP server; unset: the runtime's defaults. */
  httpLimits?: Partial<HttpServerLimits>;
  rawTopicPartitions: number;
  /**
   * `retention.ms` of the raw topics in place of the catalogue's (`TOPIC_CLASSES.raw`, 90 days): set when they
   * are created, and changed at start on existing ones whose retention differs. -1 keeps records forever.
   */
  rawRetentionMs?: number;
  shutdownDrainMs: number;
  /** How often readiness re-checks that a broker answers (default 5 s). */
  kafkaProbeIntervalMs?: number;
  /** Raw topic per provider; the contract's names unless a test gives its own. */
  topics?: Partial<Record<Provider, string>>;
  /** Not ready once records waited this long for Kafka (default 30 s); `onFatal` after `stuckExitMs` (5 min). */
  notReadyAfterMs?: number;
  stuckExitMs?: number;
}

export interface IngressDeps {
  settings: IngressSettings;
  kafka: Kafka;
  seenStore: SeenStore;
  logger: Logger;
  registry: Registry;
  /** Called when the ingress is stuck (no Kafka acknowledgement for `stuckExitMs`); `main.ts` exits. */
  onFatal: (error: unknown) => void;
  now?: () => Date;
}

export interface IngressApp extends Service {
  /** The bound HTTP port (after start). */
  port(): number;
  isReady(): boolean;
}

/**
 * The ingress: verifies provider webhooks, publishes the raw bytes to the provider's raw topic, and
 * answers 200 only once Kafka acknowledged (`acks=-1`). Nothing happens at construction; `start` connects.
 */
export function createIngressApp(deps: IngressDeps): IngressApp {
  const { settings, logger, registry } = deps;
  const now = deps.now ?? (() => new Date());
  const requestDeadlineMs = settings.requestDeadlineMs ?? DEFAULT_REQUEST_DEADLINE_MS;
  const inflight =
    settings.maxInflightBytes === undefined ? undefined : createByteBudget(settings.maxInflightBytes);
  const metrics = createIngressMetrics(registry, {
    kafkaReady: () => isReady(),
    inflightBytes: () => inflight?.inUseBytes() ?? 0,
    openConnections: async () => (server ? server.openConnections() : 0),
  });
  const producer = createReliableProducer(deps.kafka, {
    logger,
    lingerMs: settings.kafkaLingerMs,
    requestIntervalMs: settings.kafkaRequestIntervalMs,
  });
  const work = createWorkHealth({
    producer,
    notReadyAfterMs: settings.notReadyAfterMs,
    fatalAfterMs: settings.stuckExitMs,
    onFatal: deps.onFatal,
  });
  const telematicaVerifier = createTelematicaVerifier(settings.telematicaWebhookSecrets);
  const topicOf = (provider: Provider) => settings.topics?.[provider] ?? rawTopic(provider);
  // One raw topic's metadata, not the whole cluster's (see broker-probe.ts).
  const brokerProbe = createBrokerProbe(deps.kafka, {
    intervalMs: settings.kafkaProbeIntervalMs,
    topic: topicOf('smartcar'),
  });
  const publisher = createRawPublisher({
    producer,
    seenStore: deps.seenStore,
    topicOf,
    publishTimeoutMs: settings.kafkaPublishTimeoutMs,
    metrics,
    logger,
    now,
  });
  let server: RunningHttpServer | undefined;

  const isReady = () => brokerProbe.isReachable() && work.ready();

  /** Per provider: MAX_BODY_BYTES, lowered at start to what the raw topic can store (see body-limit.ts). */
  const bodyLimits = rawBodyLimits<Provider>({
    smartcar: settings.maxBodyBytes,
    telematica: settings.maxBodyBytes,
  });
  const webhooks = createWebhookRoutes({
    smartcarManagementToken: settings.smartcarManagementToken,
    telematicaVerifier,
    publisher,
    metrics,
    bodyLimits,
    inflight,
    requestDeadlineMs,
    logger,
  });
  const app = createHttpApp({
    logger,
    registry,
    readiness: () => ({ kafka: isReady() }),
    routes: webhooks.mount,
    onError: webhooks.onError,
  });

  return {
    port: () => server?.port ?? settings.httpPort,
    isReady,
    async start() {
      const rawTopics = (['smartcar', 'telematica'] as const).map(topicOf);
      const retention = settings.rawRetentionMs;
      // The catalogue's configs, corrected on existing topics too (logged).
      await ensureTopics(
        deps.kafka,
        rawTopics.map((topic) => ({
          topic,
          numPartitions: settings.rawTopicPartitions,
          configEntries: topicConfigEntries(
            'raw',
            retention === undefined ? {} : { 'retention.ms': retention },
          ),
        })),
        { logger },
      );
      await producer.connect();
      for (const provider of ['smartcar', 'telematica'] as const) {
        const topic = topicOf(provider);
        const recordLimitBytes = await producer.messageSizeLimit(topic);
        const bodyLimitBytes = effectiveBodyLimitBytes(settings.maxBodyBytes, recordLimitBytes);
        bodyLimits.setLimitBytes(provider, bodyLimitBytes);
        logger.info(
          { provider, topic, bodyLimitBytes, maxBodyBytes: settings.maxBodyBytes, recordLimitBytes },
          bodyLimitBytes < settings.maxBodyBytes
            ? 'body limit lowered to what the raw topic can store'
            : 'body limit',
        );
      }
      brokerProbe.start();
      work.start();
      try {
        await deps.seenStore.connect();
      } catch (err) {
        logger.warn({ err }, 'Redis is not answering; duplicate checks are skipped until it is back');
      }
      // The webhook URLs on plain node:http; everything else (ops routes, 404, URL variants) through express.
      server = await startHttpServer((req, res) => webhooks.serve(req, res) || app(req, res), {
        port: settings.httpPort,
        host: settings.httpHost,
        ...settings.httpLimits,
        onConnectionRefused: () => metrics.connectionsRefused.inc(),
      });
      logger.info({ port: server.port, requestDeadlineMs, ...server.limits }, 'ingress listening');
    },
    async stop() {
      // Stop intake first, let in-flight requests finish, then flush the producer, then Redis.
      await server?.close(settings.shutdownDrainMs);
      await producer.disconnect(settings.shutdownDrainMs);
      work.stop();
      await brokerProbe.stop();
      await deps.seenStore.close();
    },
  };
}
