import { randomUUID } from 'node:crypto';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { Kafka } from 'kafkajs';
import { KNOWN_PROVIDER_EVENT_TYPES, RawHeaders, rawTopic, type Provider } from '@ampflow/contracts';
import {
  createBrokerProbe,
  createReliableProducer,
  createWorkHealth,
  ensureTopics,
  withTimeout,
} from '@ampflow/kafka';
import type { Logger, Registry } from '@ampflow/observability';
import {
  AppError,
  ValidationError,
  opsRouter,
  startHttpServer,
  toHttpError,
  type RunningHttpServer,
  type Service,
} from '@ampflow/runtime';
import { effectiveBodyLimitBytes } from './body-limit';
import { admitBody, createByteBudget, IngressBusyError } from './inflight-bytes';
import { createIngressMetrics, type Outcome } from './metrics';
import type { SeenStore } from './seen-store';
import {
  createTelematicaVerifier,
  interpretSmartcar,
  interpretTelematica,
  type Intake,
} from './webhook-intake';

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

type EventIntake = Extract<Intake, { kind: 'event' }>;

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
  /** Event ids whose record is on its way to Kafka, keyed `<provider>:<eventId>`. */
  const inFlight = new Map<string, Promise<void>>();
  let server: RunningHttpServer | undefined;

  const isReady = () => brokerProbe.isReachable() && work.ready();

  /**
   * Publishes a delivery unless its event id is already stored or being stored. The entry in `inFlight`
   * lives until Kafka settles, not until this request gives up: a provider retry during a Kafka outage
   * waits on the first copy instead of queueing a second one.
   */
  async function publishDeduplicated(
    intake: EventIntake,
    rawBody: Buffer,
    contentType: string,
  ): Promise<'accepted' | 'duplicate'> {
    const { provider, eventId } = intake;
    const flightKey = `${provider}:${eventId}`;
    const waitFor = (stored: Promise<void>) =>
      withTimeout(stored, settings.kafkaPublishTimeoutMs, 'kafka_timeout', 'Kafka did not acknowledge');
    const pending = inFlight.get(flightKey);
    if (pending) return waitFor(pending).then(() => 'duplicate');
    try {
      if (await deps.seenStore.isSeen(provider, eventId)) return 'duplicate';
    } catch (err) {
      // Losing an event is worse than a duplicate that downstream drops by event id: publish anyway.
      metrics.dedupErrors.inc({ operation: 'check' });
      logger.warn({ err, provider, eventId }, 'duplicate check failed; publishing anyway');
    }
    const raced = inFlight.get(flightKey);
    if (raced) return waitFor(raced).then(() => 'duplicate');

    const started = process.hrtime.bigint();
    const elapsedSeconds = () => Number(process.hrtime.bigint() - started) / 1e9;
    const acked = producer
      .send(topicOf(provider), [
        {
          key: intake.key,
          value: rawBody,
          headers: {
            [RawHeaders.provider]: provider,
            [RawHeaders.eventId]: eventId,
            [RawHeaders.eventType]: intake.eventType,
            [RawHeaders.receivedAt]: now().toISOString(),
            [RawHeaders.contentType]: contentType,
          },
        },
      ])
      .then(
        () => metrics.publishSeconds.observe({ provider, result: 'ok' }, elapsedSeconds()),
        (err: unknown) => {
          metrics.publishSeconds.observe({ provider, result: 'failed' }, elapsedSeconds());
          throw err;
        },
      );
    // Remembered once Kafka acknowledged, also when that came after this request was answered 503. The
    // answer does not wait for Redis: until the id is marked, the in-flight entry catches redeliveries.
    const stored = acked.then(async () => {
      try {
        await deps.seenStore.markSeen(provider, eventId);
      } catch (err) {
        metrics.dedupErrors.inc({ operation: 'mark' });
        logger.warn({ err, provider, eventId }, 'could not remember a stored event id');
      }
    });
    inFlight.set(flightKey, stored);
    stored.then(
      () => inFlight.delete(flightKey),
      () => inFlight.delete(flightKey),
    );
    await waitFor(acked);
    return 'accepted';
  }

  function webhookHandler(provider: Provider) {
    return async (req: Request, res: Response) => {
      const log = res.locals.log as Logger;
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
      const outcome = await publishDeduplicated(
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

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use((req, res, next) => {
    const requestId = (req.headers['x-request-id'] as string | undefined)?.slice(0, 128) || randomUUID();
    res.setHeader('x-request-id', requestId);
    res.locals.log = logger.child({ requestId });
    next();
  });
  app.use(opsRouter(registry, () => ({ kafka: isReady() })));

  const rawBody = (limit: number) => express.raw({ type: () => true, limit });
  /** Per provider: MAX_BODY_BYTES, lowered at start to what the raw topic can store (see body-limit.ts). */
  const bodyLimits: Record<Provider, number> = {
    smartcar: settings.maxBodyBytes,
    telematica: settings.maxBodyBytes,
  };
  const bodyReaders: Record<Provider, RequestHandler> = {
    smartcar: rawBody(bodyLimits.smartcar),
    telematica: rawBody(bodyLimits.telematica),
  };
  const limitOf = (res: Response) => bodyLimits[res.locals.provider as Provider] ?? settings.maxBodyBytes;
  const admit = (provider: Provider): RequestHandler =>
    inflight
      ? admitBody(inflight, {
          bodyLimitBytes: () => bodyLimits[provider],
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
  for (const provider of ['smartcar', 'telematica'] as const) {
    app.post(
      `/webhooks/${provider}`,
      (_req, res, next) => {
        res.locals.provider = provider;
        next();
      },
      requireJson,
      admit(provider),
      (req, res, next) => bodyReaders[provider](req, res, next),
      webhookHandler(provider),
    );
  }
  app.use((_req: Request, res: Response) => {
    res.status(404).json({ error: { code: 'not_found', message: 'no such route' } });
  });
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const error = bodyParserError(err, limitOf(res)) ?? err;
    const { status, body } = toHttpError(error);
    const provider = String(res.locals.provider ?? 'none');
    const log = (res.locals.log as Logger | undefined) ?? logger;
    if (status === 401) metrics.signatureFailures.inc({ provider, reason: body.error.code });
    if (status === 400) metrics.schemaFailures.inc({ provider, reason: body.error.code });
    if (error instanceof IngressBusyError)
      log.warn({ provider }, 'webhook refused: too many bytes in flight');
    else if (status >= 500) log.error({ err: error, provider }, 'webhook not stored');
    else log.info({ provider, code: body.error.code, status }, 'webhook refused');
    record(res, outcomeOf(error, status));
    if (status === 503) res.setHeader('retry-after', '5');
    res.status(status).json(body);
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
        bodyLimits[provider] = effectiveBodyLimitBytes(settings.maxBodyBytes, recordLimitBytes);
        bodyReaders[provider] = rawBody(bodyLimits[provider]);
        logger.info(
          {
            provider,
            topic,
            bodyLimitBytes: bodyLimits[provider],
            maxBodyBytes: settings.maxBodyBytes,
            recordLimitBytes,
          },
          bodyLimits[provider] < settings.maxBodyBytes
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

/** Maps body-parser's errors (size limit, aborted upload) onto the taxonomy. */
function bodyParserError(err: unknown, maxBodyBytes: number): AppError | undefined {
  const type = (err as { type?: string } | null)?.type;
  if (type === 'entity.too.large') {
    return new ValidationError('payload_too_large', `the body exceeds ${maxBodyBytes} bytes`, {
      httpStatus: 413,
    });
  }
  if (type === 'request.aborted' || type === 'request.size.invalid' || type === 'stream.encoding.set') {
    return new ValidationError('incomplete_body', 'the request body was not received completely');
  }
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
    return new ValidationError('unsupported_encoding', 'the body encoding is not supported', {
      httpStatus: 415,
    });
  }
  return undefined;
}
