import { randomUUID } from 'node:crypto';
import express, {
  type Express,
  type NextFunction,
  type Request,
  type RequestHandler,
  type Response,
} from 'express';
import type { Logger, Registry } from '@ampflow/observability';
import { AppError, ValidationError, toHttpError } from '../errors';
import { opsRoutes, sendNotFound, type ReadinessProbe } from '../ops-routes';

/** What the error hook sees of an error answer, before it is sent. */
export interface HttpErrorAnswer {
  /** The error after body-parser errors were mapped onto the taxonomy. */
  error: unknown;
  status: number;
  body: { error: { code: string; message: string } };
  req: Request;
  res: Response;
  /** The request's logger (carries `requestId`). */
  log: Logger;
}

export interface HttpAppOptions {
  logger: Logger;
  registry: Registry;
  /** Checks behind `/readyz`. */
  readiness: ReadinessProbe;
  /** Mounts the service's own routes; they run after the request id and the ops routes. */
  routes: (app: Express) => void;
  /**
   * Called for every error answer before it is sent: for metrics, outcome recording, logging and extra
   * headers (e.g. `retry-after`). When absent, 5xx answers are logged as errors and others at info.
   */
  onError?: (answer: HttpErrorAnswer) => void;
}

/**
 * An express app with what every HTTP API here shares: an `x-request-id` (the caller's, cut to 128
 * characters, else a random UUID) echoed on the answer and carried by the request's logger (see
 * {@link requestLog}); `/healthz`, `/readyz`, `/metrics`; a JSON 404; and one error handler that maps body-parser
 * errors onto the taxonomy and any error to its status and JSON body through {@link toHttpError}.
 * No ETag and no `x-powered-by`.
 */
export function createHttpApp(options: HttpAppOptions): Express {
  const { logger } = options;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use((req, res, next) => {
    const requestId = (req.headers['x-request-id'] as string | undefined)?.slice(0, 128) || randomUUID();
    res.setHeader('x-request-id', requestId);
    res.locals.log = logger.child({ requestId });
    next();
  });
  const ops = opsRoutes(options.registry, options.readiness);
  app.use((req, res, next) => {
    if (!ops(req, res)) next();
  });
  options.routes(app);
  app.use((_req: Request, res: Response) => sendNotFound(res));
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const error = bodyParserError(err, res.locals.bodyLimitBytes as number | undefined) ?? err;
    const { status, body } = toHttpError(error);
    const log = requestLog(res, logger);
    if (options.onError) options.onError({ error, status, body, req, res, log });
    else if (status >= 500) log.error({ err: error, status }, 'request failed');
    else log.info({ code: body.error.code, status }, 'request refused');
    res.status(status).json(body);
  });
  return app;
}

/** The request's logger, with its `requestId`; `fallback` outside {@link createHttpApp}'s middleware. */
export function requestLog(res: Response, fallback?: Logger): Logger {
  const log = res.locals.log as Logger | undefined;
  if (log) return log;
  if (fallback) return fallback;
  throw new Error('requestLog: no request logger; the app was not built by createHttpApp');
}

/** Raw-body readers for a set of routes, each under its own size limit, which may change at run time. */
export interface RawBodyLimits<K extends string> {
  /**
   * Middleware that reads route `key`'s body, whatever its content type, into `req.body` as a Buffer under
   * the route's current limit. Over the limit, the error handler answers 413 `payload_too_large`.
   */
  reader(key: K): RequestHandler;
  /** The route's current limit, in bytes. */
  limitBytes(key: K): number;
  /** Changes the route's limit, in bytes, for requests whose body is read from then on. */
  setLimitBytes(key: K, bytes: number): void;
}

export function rawBodyLimits<K extends string>(initialBytes: Record<K, number>): RawBodyLimits<K> {
  const limits = { ...initialBytes };
  const parse = (limit: number) => express.raw({ type: () => true, limit });
  const parsers = new Map<K, RequestHandler>();
  for (const key of Object.keys(limits) as K[]) parsers.set(key, parse(limits[key]));
  return {
    reader: (key) => (req, res, next) => {
      // The error handler words the 413 with the limit that applied to this request.
      res.locals.bodyLimitBytes = limits[key];
      parsers.get(key)!(req, res, next);
    },
    limitBytes: (key) => limits[key],
    setLimitBytes(key, bytes) {
      limits[key] = bytes;
      parsers.set(key, parse(bytes));
    },
  };
}

/**
 * Maps body-parser's errors (size limit, aborted upload, encodings) onto the taxonomy; exported for a route
 * served without express that reads its body with body-parser too (the ingress's webhook path).
 */
export function bodyParserError(err: unknown, limitBytes: number | undefined): AppError | undefined {
  const type = (err as { type?: string } | null)?.type;
  if (type === 'entity.too.large') {
    const limit = limitBytes ?? (err as { limit?: number }).limit;
    return new ValidationError('payload_too_large', `the body exceeds ${limit} bytes`, { httpStatus: 413 });
  }
  if (type === 'request.aborted' || type === 'request.size.invalid' || type === 'stream.encoding.set') {
    return new ValidationError('incomplete_body', 'the request body was not received completely');
  }
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
    return new ValidationError('unsupported_encoding', 'the body encoding is not supported', {
      httpStatus: 415,
    });
  }
  // A body that is not in the Content-Encoding it names (gzip, deflate, br): body-parser passes zlib's error
  // on as a client error (400, exposed) without a type.
  const status = (err as { statusCode?: number } | null)?.statusCode;
  if (type === undefined && (err as { expose?: boolean } | null)?.expose && status === 400) {
    return new ValidationError('undecodable_body', 'the body is not encoded as its Content-Encoding says');
  }
  return undefined;
}
