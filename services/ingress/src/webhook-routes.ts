import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Express, Request, RequestHandler, Response } from 'express';
import { KNOWN_PROVIDER_EVENT_TYPES, type Provider } from '@ampflow/contracts';
import type { Logger } from '@ampflow/observability';
import { AppError, sendJson, toHttpError, ValidationError } from '@ampflow/runtime';
import { bodyParserError, type HttpErrorAnswer, type RawBodyLimits } from '@ampflow/runtime/http';
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
  /** The service's logger; a request's child logger (with its `requestId`) is made only when it logs. */
  logger: Logger;
}

export interface WebhookRoutes {
  /**
   * Serves `POST /webhooks/<provider>` on plain `node:http`, without express, and returns true; returns false
   * (nothing done) for any other request, which then goes to the express app. Answers as the express route
   * does (same checks, errors, headers and `x-request-id`).
   */
  serve(req: IncomingMessage, res: ServerResponse): boolean;
  /** Mounts `POST /webhooks/smartcar` and `POST /webhooks/telematica` (URLs `serve` leaves to express). */
  mount(app: Express): void;
  /** The app's error hook: metrics, logs and the outcome of every refused or failed webhook. */
  onError(answer: HttpErrorAnswer): void;
}

const PROVIDERS = ['smartcar', 'telematica'] as const;

/** What the webhook steps keep about a request (`res.locals` under express; the same object without it). */
interface WebhookLocals {
  provider?: Provider;
  eventType?: string;
  deadline?: RequestDeadline;
  /** The request's logger; set by express's middleware, made on first use on the plain path. */
  log?: Logger;
  requestId?: string;
  bodyLimitBytes?: number;
}

/** The request and response as the webhook steps use them: node's, plus `res.locals`. */
type WebhookResponse = ServerResponse & { locals: WebhookLocals };
type WebhookRequest = IncomingMessage & { body?: unknown };

const deadlineOf = (res: Response) => res.locals.deadline as RequestDeadline;

/**
 * The webhook routes: the request's deadline, content type, in-flight byte budget, raw body under the
 * provider's limit, then verification and publishing; the request metrics and outcome recorded on success and
 * on error alike.
 */
export function createWebhookRoutes(deps: WebhookRoutesDeps): WebhookRoutes {
  const { metrics, bodyLimits, inflight, logger } = deps;
  const readers = {
    smartcar: readBefore(deadlineOf, bodyLimits.reader('smartcar')),
    telematica: readBefore(deadlineOf, bodyLimits.reader('telematica')),
  };
  const admit = inflight
    ? Object.fromEntries(
        PROVIDERS.map((provider) => [
          provider,
          admitBody(inflight, {
            bodyLimitBytes: () => bodyLimits.limitBytes(provider),
            onRefused: () => metrics.busyRefusals.inc(),
          }),
        ]),
      )
    : undefined;

  /** The request's logger, with its `requestId`; made on first use (most requests never log). */
  function logOf(res: WebhookResponse): Logger {
    const locals = res.locals;
    return (locals.log ??= logger.child({ requestId: locals.requestId }));
  }

  function record(res: WebhookResponse, outcome: Outcome) {
    metrics.requests.inc({
      provider: res.locals.provider ?? 'none',
      event_type: eventTypeLabel(res.locals.eventType),
      outcome,
    });
  }

  /** The success answer; the request's deadline timer is stopped first. */
  function answer(res: WebhookResponse, body: unknown) {
    res.locals.deadline?.clear();
    sendJson(res, 200, body);
  }

  async function handle(provider: Provider, req: WebhookRequest, res: WebhookResponse) {
    const rawBody = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    metrics.bodyBytes.observe({ provider }, rawBody.length);
    const intake =
      provider === 'smartcar'
        ? interpretSmartcar(deps.smartcarManagementToken, rawBody, req.headers)
        : interpretTelematica(deps.telematicaVerifier, rawBody, req.headers);
    res.locals.eventType = intake.kind === 'challenge' ? 'VERIFY' : intake.eventType;

    if (intake.kind === 'challenge') {
      logOf(res).info({ provider }, 'verification challenge answered');
      record(res, 'challenge_answered');
      answer(res, intake.answer);
      return;
    }
    if (!intake.knownType) {
      metrics.unknownEventTypes.inc({ provider });
      logOf(res).warn({ provider, eventType: intake.eventType }, 'publishing an event type without a schema');
    }
    const outcome = await deps.publisher.publish(
      intake,
      rawBody,
      req.headers['content-type'] ?? 'application/json',
      res.locals.deadline,
    );
    if (outcome === 'duplicate') metrics.duplicates.inc({ provider });
    if (logger.isLevelEnabled('info'))
      logOf(res).info(
        { provider, eventId: intake.eventId, eventType: intake.eventType, outcome },
        'webhook handled',
      );
    record(res, outcome);
    answer(res, { status: outcome, eventId: intake.eventId });
  }

  /**
   * One webhook request, from its arrival to its answer: the steps in order, each passing an error to `fail`
   * (express's error handler, or {@link failPlain}). The deadline starts here, when the headers are in.
   */
  function run(provider: Provider, req: WebhookRequest, res: WebhookResponse, fail: (err: unknown) => void) {
    const locals = res.locals;
    locals.provider = provider;
    locals.deadline = startDeadline(deps.requestDeadlineMs);
    const refused = jsonRefusal(req.headers['content-type']);
    if (refused) return fail(refused);
    const afterAdmit = (err?: unknown) => {
      if (err) return fail(err);
      readers[provider](req as Request, res as unknown as Response, (readErr?: unknown) => {
        if (readErr) return fail(readErr);
        handle(provider, req, res).catch(fail);
      });
    };
    if (admit) admit[provider]!(req, res, afterAdmit);
    else afterAdmit();
  }

  /** The error answer of the plain path, as express's error handler (createHttpApp) gives it. */
  function failPlain(req: WebhookRequest, res: WebhookResponse, err: unknown) {
    const error = bodyParserError(err, res.locals.bodyLimitBytes) ?? err;
    const { status, body } = toHttpError(error);
    onError({
      error,
      status,
      body,
      req: req as Request,
      res: res as unknown as Response,
      log: logOf(res),
    });
    if (!res.headersSent) sendJson(res, status, body);
  }

  function onError({ error, status, body, res, log }: HttpErrorAnswer) {
    const locals = res.locals as WebhookLocals;
    locals.deadline?.clear();
    const provider = locals.provider ?? 'none';
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
    record(res as unknown as WebhookResponse, outcomeOf(error, status));
    // Providers retry a 503; the header paces them.
    if (status === 503) res.setHeader('retry-after', '5');
  }

  return {
    serve(req, res) {
      if (req.method !== 'POST') return false;
      const url = req.url;
      const provider: Provider | undefined =
        url === '/webhooks/smartcar' ? 'smartcar' : url === '/webhooks/telematica' ? 'telematica' : undefined;
      if (!provider) return false;
      // As createHttpApp's middleware: the caller's request id (cut to 128 characters) or a new one, echoed.
      const given = req.headers['x-request-id'];
      const requestId = (typeof given === 'string' && given.slice(0, 128)) || randomUUID();
      res.setHeader('x-request-id', requestId);
      const plain = res as WebhookResponse;
      plain.locals = { requestId };
      run(provider, req, plain, (err) => failPlain(req, plain, err));
      return true;
    },
    mount(app) {
      for (const provider of PROVIDERS) {
        app.post(`/webhooks/${provider}`, (req, res, next) =>
          run(provider, req, res as unknown as WebhookResponse, next),
        );
      }
    },
    onError,
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
      next(err);
    };
    deadline.onExpiry(() => {
      if (settled) return;
      res.setHeader('connection', 'close');
      // The client's doing, not ours: a 408 (4xx), which the 5xx alert does not count.
      settle(
        new ValidationError(
          'request_timeout',
          `the body did not arrive within the request deadline of ${deadline.budgetMs} ms`,
          { httpStatus: 408 },
        ),
      );
    });
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

/** The 415 for a request that is not JSON, or JSON declared in a charset other than UTF-8; undefined when fine. */
function jsonRefusal(contentType: string | undefined): ValidationError | undefined {
  if (contentType === 'application/json') return undefined;
  if (!isJson(contentType)) {
    return new ValidationError('unsupported_media_type', 'Content-Type must be application/json', {
      httpStatus: 415,
    });
  }
  const charset = charsetOf(contentType);
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    // JSON between systems is UTF-8 (RFC 8259 §8.1): a body declared in another charset would be misread.
    return new ValidationError('unsupported_encoding', 'a JSON body must be UTF-8', { httpStatus: 415 });
  }
  return undefined;
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
