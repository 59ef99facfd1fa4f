import type { Express, NextFunction, Request, RequestHandler, Response } from 'express';
import { KNOWN_PROVIDER_EVENT_TYPES, type Provider } from '@ampflow/contracts';
import { AppError, ValidationError } from '@ampflow/runtime';
import { requestLog, type HttpErrorAnswer, type RawBodyLimits } from '@ampflow/runtime/http';
import { admitBody, IngressBusyError, type ByteBudget } from './inflight-bytes';
import type { IngressMetrics, Outcome } from './metrics';
import type { RawPublisher } from './raw-publisher';
import { RequestDeadlineError, startDeadline, type RequestDeadline } from './request-deadline';
import { interpretSmartcar, interpretTelematica, type TelematicaVerifier } from './webhook-intake';

export interface WebhookRoutesDeps {
  smartcarManagementToken: string;
  telematicaVerifier: TelematicaVerifier;
  publisher: Pick<RawPublisher, 'publish'>;
  metrics: IngressMetrics;
  /** Per provider; lowered at start to what the raw topic can store (see body-limit.ts). */
  bodyLimits: RawBodyLimits<Provider>;
  /** Bound on request-body bytes held at once; unset: no bound. */
  inflight?: ByteBudget;
  /**
   * Time from a webhook's arrival (headers received) to its answer, in ms: a request not stored by then is
   * answered 503 `deadline_exceeded` (see request-deadline.ts).
   */
  requestDeadlineMs: number;
}

export interface WebhookRoutes {
  /** Mounts `POST /webhooks/smartcar` and `POST /webhooks/telematica`. */
  mount(app: Express): void;
  /** The app's error hook: metrics, logs and the outcome of every refused or failed webhook. */
  onError(answer: HttpErrorAnswer): void;
}

const PROVIDERS = ['smartcar', 'telematica'] as const;

/**
 * The webhook routes: the request's deadline, content type, in-flight byte budget, raw body under the
 * provider's limit, then verification and publishing; the request metrics and outcome recorded on success and
 * on error alike.
 */
export function createWebhookRoutes(deps: WebhookRoutesDeps): WebhookRoutes {
  const { metrics, bodyLimits, inflight } = deps;

  const deadlineOf = (res: Response) => res.locals.deadline as RequestDeadline;

  function record(res: Response, outcome: Outcome) {
    metrics.requests.inc({
      provider: String(res.locals.provider ?? 'none'),
      event_type: eventTypeLabel(res.locals.eventType as string | undefined),
      outcome,
    });
  }

  const admit = (provider: Provider): RequestHandler =>
    inflight
      ? admitBody(inflight, {
          bodyLimitBytes: () => bodyLimits.limitBytes(provider),
          onRefused: () => metrics.busyRefusals.inc(),
        })
      : (_req, _res, next) => next();

  function handle(provider: Provider) {
    return async (req: Request, res: Response) => {
      const log = requestLog(res);
      const rawBody = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      metrics.bodyBytes.observe({ provider }, rawBody.length);
      const intake =
        provider === 'smartcar'
          ? interpretSmartcar(deps.smartcarManagementToken, rawBody, req.headers)
          : interpretTelematica(deps.telematicaVerifier, rawBody, req.headers);
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
      const outcome = await deps.publisher.publish(
        intake,
        rawBody,
        req.headers['content-type'] ?? 'application/json',
        deadlineOf(res),
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

  return {
    mount(app) {
      for (const provider of PROVIDERS) {
        app.post(
          `/webhooks/${provider}`,
          (_req, res, next) => {
            res.locals.provider = provider;
            res.locals.deadline = startDeadline(deps.requestDeadlineMs);
            next();
          },
          requireJson,
          admit(provider),
          readBefore(deadlineOf, bodyLimits.reader(provider)),
          handle(provider),
        );
      }
    },
    onError({ error, status, body, res, log }) {
      const provider = String(res.locals.provider ?? 'none');
      if (status === 401) metrics.signatureFailures.inc({ provider, reason: body.error.code });
      if (status === 400) metrics.schemaFailures.inc({ provider, reason: body.error.code });
      if (error instanceof IngressBusyError)
        log.warn({ provider }, 'webhook refused: too many bytes in flight');
      else if (error instanceof RequestDeadlineError)
        log.warn(
          { provider, stage: error.stage, deadlineMs: error.budgetMs },
          'webhook not stored within its deadline',
        );
      else if (status >= 500) log.error({ err: error, provider }, 'webhook not stored');
      else log.info({ provider, code: body.error.code, status }, 'webhook refused');
      record(res, outcomeOf(error, status));
      // Providers retry a 503; the header paces them.
      if (status === 503) res.setHeader('retry-after', '5');
    },
  };
}

/**
 * Runs the body `reader`, but passes a {@link RequestDeadlineError} on when the request's deadline passes
 * first: the 503 then goes out with `Connection: close`, so Node closes the connection after it and the rest
 * of a slow upload is never read (the reader's own late callback is ignored).
 */
export function readBefore(
  deadlineOf: (res: Response) => RequestDeadline,
  reader: RequestHandler,
): RequestHandler {
  return (req, res, next) => {
    const deadline = deadlineOf(res);
    let settled = false;
    const settle = (err?: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      next(err);
    };
    const timer = setTimeout(() => {
      res.setHeader('connection', 'close');
      // The client's doing, not ours: a 408 (4xx), which the 5xx alert does not count.
      settle(
        new ValidationError(
          'request_timeout',
          `the body did not arrive within the request deadline of ${deadline.budgetMs} ms`,
          { httpStatus: 408 },
        ),
      );
    }, deadline.remainingMs());
    reader(req, res, settle);
  };
}

/** `application/json` or any `application/*+json`, parameters ignored. */
export function isJson(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const mediaType = contentType.split(';')[0]!.trim().toLowerCase();
  return (
    mediaType === 'application/json' || (mediaType.startsWith('application/') && mediaType.endsWith('+json'))
  );
}

/** The `charset` parameter of a Content-Type, lower case and unquoted; undefined when there is none. */
export function charsetOf(contentType: string | undefined): string | undefined {
  for (const parameter of (contentType ?? '').split(';').slice(1)) {
    const [name, ...value] = parameter.split('=');
    if (name!.trim().toLowerCase() === 'charset')
      return value
        .join('=')
        .trim()
        .replace(/^"(.*)"$/, '$1')
        .toLowerCase();
  }
  return undefined;
}

function requireJson(req: Request, _res: Response, next: NextFunction) {
  const contentType = req.headers['content-type'];
  const charset = charsetOf(contentType);
  if (!isJson(contentType)) {
    next(
      new ValidationError('unsupported_media_type', 'Content-Type must be application/json', {
        httpStatus: 415,
      }),
    );
  } else if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    // JSON between systems is UTF-8 (RFC 8259 §8.1): a body declared in another charset would be misread.
    next(
      new ValidationError('unsupported_encoding', 'a JSON body must be UTF-8', {
        httpStatus: 415,
      }),
    );
  } else next();
}

/** The `event_type` label: known provider types as they are, anything else `unknown` (bounded cardinality). */
export function eventTypeLabel(eventType: string | undefined): string {
  if (eventType === undefined || eventType === 'none') return 'none';
  return KNOWN_PROVIDER_EVENT_TYPES.has(eventType) ? eventType : 'unknown';
}

/** The `outcome` label of a refused or failed webhook. */
export function outcomeOf(error: unknown, status: number): Outcome {
  if (status === 401) return 'unauthorized';
  if (status === 413) return 'too_large';
  if (status === 415) return 'unsupported_media_type';
  if (status === 408) return 'request_timeout';
  if (error instanceof IngressBusyError) return 'busy';
  if (error instanceof RequestDeadlineError) return 'deadline_exceeded';
  if (status === 503) return 'unavailable';
  if (status === 400) return 'invalid';
  return error instanceof AppError ? 'invalid' : 'error';
}
