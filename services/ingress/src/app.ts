import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Kafka } from 'kafkajs';
import { KNOWN_PROVIDER_EVENT_TYPES, rawTopic, type Provider } from '@ampflow/contracts';
import { createBrokerProbe, createReliableProducer, createWorkHealth, ensureTopics } from '@ampflow/kafka';
import type { Logger, Registry } from '@ampflow/observability';
import {
  AppError,
  ValidationError,
  startHttpServer,
  type RunningHttpServer,
  type Service,
} from '@ampflow/runtime';
import { createHttpApp, rawBodyLimits, requestLog, type HttpErrorAnswer } from '@ampflow/runtime/http';
import { effectiveBodyLimitBytes } from './body-limit';
import { admitBody, createByteBudget, IngressBusyError } from './inflight-bytes';
import { createIngressMetrics, type Outcome } from './metrics';
import { createRawPublisher } from './raw-publisher';
import type { SeenStore } from './seen-store';
import { createTelematicaVerifier, interpretSmartcar, interpretTelematica } from './webhook-intake';

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
  rawTopicPartitions: number;
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

function isJson(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const mediaType = contentType.split(';')[0]!.trim().toLowerCase();
  return (
    mediaType === 'application/json' || (mediaType.startsWith('application/') && mediaType.endsWith('+json'))
  );
}

/**
 * The ingress: verifies provider webhooks, publishes the raw bytes to the provider's raw topic, and
 * answers 200 only once Kafka acknowledged (`acks=-1`). Nothing happens at construction; `start` connects.
 */
export function createIngressApp(deps: IngressDeps): IngressApp {
  const { settings, logger, registry } = deps;
  const now = deps.now ?? (() => new Date());
  const inflight =
    settings.maxInflightBytes === undefined ? undefined : createByteBudget(settings.maxInflightBytes);
  const metrics = createIngressMetrics(registry, {
    kafkaReady: () => isReady(),
    inflightBytes: () => inflight?.inUseBytes() ?? 0,
  });
  const producer = createReliableProducer(deps.kafka, { logger });
  const work = createWorkHealth({
    producer,
    notReadyAfterMs: settings.notReadyAfterMs,
    fatalAfterMs: settings.stuckExitMs,
    onFatal: deps.onFatal,
  });
  const brokerProbe = createBrokerProbe(deps.kafka, { intervalMs: settings.kafkaProbeIntervalMs });
  const telematicaVerifier = createTelematicaVerifier(settings.telematicaWebhookSecrets, () =>
    now().getTime(),
  );
  const topicOf = (provider: Provider) => settings.topics?.[provider] ?? rawTopic(provider);
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

  function webhookHandler(provider: Provider) {
    return async (req: Request, res: Response) => {
      const log = requestLog(res);
      const rawBody = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      metrics.bodyBytes.observe({ provider }, rawBody.length);
      res.locals.provider = provider;
      const intake =
        provider === 'smartcar'
          ? interpretSmartcar(settings.smartcarManagementToken, rawBody, req.headers)
          : interpretTelematica(telematicaVerifier, rawBody, req.headers);
      res.locals.eventType = intake.kind === 'challenge' ? 'VERIFY' : intake.eventType;

      if (intake.kind === 'challenge') {
        log.info({ provider }, 'verification challenge answered');
        record(res, 'challenge_answered');
        res.status(200).json(intake.answer);
        return;
      }
      if (!intake.knownType) {
        metrics.unknownEventTypes.inc({ provider });
        log.warn({ provider, eventType: intake.eventType }, 'publishing an event type without a schema');
      }
      const outcome = await publisher.publish(
        intake,
        rawBody,
        req.headers['content-type'] ?? 'application/json',
      );
      if (outcome === 'duplicate') metrics.duplicates.inc({ provider });
      log.info(
        { provider, eventId: intake.eventId, eventType: intake.eventType, outcome },
        'webhook handled',
      );
      record(res, outcome);
      res.status(200).json({ status: outcome, eventId: intake.eventId });
    };
  }

  function record(res: Response, outcome: Outcome) {
    const eventType = String(res.locals.eventType ?? 'none');
    metrics.requests.inc({
      provider: String(res.locals.provider ?? 'none'),
      event_type: KNOWN_PROVIDER_EVENT_TYPES.has(eventType)
        ? eventType
        : eventType === 'none'
          ? 'none'
          : 'unknown',
      outcome,
    });
  }

  function outcomeOf(error: unknown, status: number): Outcome {
    if (status === 401) return 'unauthorized';
    if (status === 413) return 'too_large';
    if (status === 415) return 'unsupported_media_type';
    if (error instanceof IngressBusyError) return 'busy';
    if (status === 503) return 'unavailable';
    if (status === 400) return 'invalid';
    return error instanceof AppError ? 'invalid' : 'error';
  }

  /** Per provider: MAX_BODY_BYTES, lowered at start to what the raw topic can store (see body-limit.ts). */
  const bodyLimits = rawBodyLimits<Provider>({
    smartcar: settings.maxBodyBytes,
    telematica: settings.maxBodyBytes,
  });
  const admit = (provider: Provider): RequestHandler =>
    inflight
      ? admitBody(inflight, {
          bodyLimitBytes: () => bodyLimits.limitBytes(provider),
          onRefused: () => metrics.busyRefusals.inc(),
        })
      : (_req, _res, next) => next();
  const requireJson = (req: Request, _res: Response, next: NextFunction) => {
    if (!isJson(req.headers['content-type'])) {
      next(
        new ValidationError('unsupported_media_type', 'Content-Type must be application/json', {
          httpStatus: 415,
        }),
      );
    } else next();
  };
  /** Metrics, logs and the outcome of every refused or failed webhook. */
  const onError = ({ error, status, body, res, log }: HttpErrorAnswer) => {
    const provider = String(res.locals.provider ?? 'none');
    if (status === 401) metrics.signatureFailures.inc({ provider, reason: body.error.code });
    if (status === 400) metrics.schemaFailures.inc({ provider, reason: body.error.code });
    if (error instanceof IngressBusyError)
      log.warn({ provider }, 'webhook refused: too many bytes in flight');
    else if (status >= 500) log.error({ err: error, provider }, 'webhook not stored');
    else log.info({ provider, code: body.error.code, status }, 'webhook refused');
    record(res, outcomeOf(error, status));
    if (status === 503) res.setHeader('retry-after', '5');
  };
  const app = createHttpApp({
    logger,
    registry,
    readiness: () => ({ kafka: isReady() }),
    onError,
    routes(routes) {
      for (const provider of ['smartcar', 'telematica'] as const) {
        routes.post(
          `/webhooks/${provider}`,
          (_req, res, next) => {
            res.locals.provider = provider;
            next();
          },
          requireJson,
          admit(provider),
          bodyLimits.reader(provider),
          webhookHandler(provider),
        );
      }
    },
  });

  return {
    port: () => server?.port ?? settings.httpPort,
    isReady,
    async start() {
      await ensureTopics(
        deps.kafka,
        (['smartcar', 'telematica'] as const).map((p) => ({
          topic: topicOf(p),
          numPartitions: settings.rawTopicPartitions,
        })),
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
      server = await startHttpServer(app, { port: settings.httpPort, host: settings.httpHost });
      logger.info({ port: server.port }, 'ingress listening');
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
