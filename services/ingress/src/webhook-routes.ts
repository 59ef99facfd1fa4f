import type { Express, NextFunction, Request, RequestHandler, Response } from 'express';
import { KNOWN_PROVIDER_EVENT_TYPES, type Provider } from '@ampflow/contracts';
import { AppError, ValidationError } from '@ampflow/runtime';
import { requestLog, type HttpErrorAnswer, type RawBodyLimits } from '@ampflow/runtime/http';
import { admitBody, IngressBusyError, type ByteBudget } from './inflight-bytes';
import type { IngressMetrics, Outcome } from './metrics';
import type { RawPublisher } from './raw-publisher';
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
}

export interface WebhookRoutes {
  /** Mounts `POST /webhooks/smartcar` and `POST /webhooks/telematica`. */
  mount(app: Express): void;
  /** The app's error hook: metrics, logs and the outcome of every refused or failed webhook. */
  onError(answer: HttpErrorAnswer): void;
}

const PROVIDERS = ['smartcar', 'telematica'] as const;

/**
 * The webhook routes: content type, in-flight byte budget, raw body under the provider's limit, then
 * verification and publishing; the request metrics and outcome recorded on success and on error alike.
 */
export function createWebhookRoutes(deps: WebhookRoutesDeps): WebhookRoutes {
  const { metrics, bodyLimits, inflight } = deps;

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
            next();
          },
          requireJson,
          admit(provider),
          bodyLimits.reader(provider),
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
      else if (status >= 500) log.error({ err: error, provider }, 'webhook not stored');
      else log.info({ provider, code: body.error.code, status }, 'webhook refused');
      record(res, outcomeOf(error, status));
      // Providers retry a 503; the header paces them.
      if (status === 503) res.setHeader('retry-after', '5');
    },
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

function requireJson(req: Request, _res: Response, next: NextFunction) {
  if (!isJson(req.headers['content-type'])) {
    next(
      new ValidationError('unsupported_media_type', 'Content-Type must be application/json', {
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
  if (error instanceof IngressBusyError) return 'busy';
  if (status === 503) return 'unavailable';
  if (status === 400) return 'invalid';
  return error instanceof AppError ? 'invalid' : 'error';
}
