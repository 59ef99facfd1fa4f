import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import type { Logger } from '@ampflow/observability';
import { AppError, DependencyError, ValidationError } from '@ampflow/runtime';
import {
  EndpointNotFoundError,
  parseOrThrow,
  publicView,
  type CreateEndpointInput,
  type Endpoint,
  type UpdateEndpointInput,
} from '../endpoints/model';
import type { EndpointStore } from '../endpoints/store';
import { requireBearerToken } from './auth';
import type { DeliveryControl } from './delivery-control';

/** Largest admin request body, bytes (64 KiB): an endpoint with 3 full 1000-entry filters still fits. */
export const ADMIN_MAX_BODY_BYTES = 64 * 1024;

export interface AdminRouterDeps {
  /** NOTIFIER_ADMIN_TOKEN; compared in constant time, never logged. */
  token: string;
  endpoints: EndpointStore;
  delivery: DeliveryControl;
  /** Epoch ms; injected by tests. */
  now?: () => number;
  /** Refuses URLs the notifier will not deliver to (throws a ValidationError); see EndpointStoreBehaviour. */
  checkUrl?: (url: string) => void;
  logger: Logger;
}

const limitQuery = (max: number, fallback: number) =>
  z.coerce
    .number({ error: 'must be a number' })
    .int('must be an integer')
    .min(1, 'must be at least 1')
    .max(max, `must be at most ${max}`)
    .default(fallback);

const attemptsQuery = z.object({ limit: limitQuery(1000, 100) });
const deadLettersQuery = z.object({
  limit: limitQuery(1000, 100),
  endpointId: z.string().min(1).max(100).optional(),
});
const retryBody = z.strictObject({ endpointId: z.string().min(1).max(100).optional() });
const recoverBody = z.strictObject({
  since: z.iso.datetime({ offset: true, error: 'must be an ISO-8601 time such as 2025-01-31T12:00:00Z' }),
});

/** Body-parser's errors as the taxonomy's: bad JSON is a 400, an oversized body a 413. */
function bodyError(err: unknown): AppError | undefined {
  const type = (err as { type?: string } | null)?.type;
  if (type === 'entity.parse.failed')
    return new ValidationError('invalid_json', 'the body is not valid JSON');
  if (type === 'entity.too.large')
    return new ValidationError('payload_too_large', `the body exceeds ${ADMIN_MAX_BODY_BYTES} bytes`, {
      httpStatus: 413,
    });
  return undefined;
}

const hasBody = (req: Request) =>
  req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;

/**
 * The admin API, to be mounted at `/v1` in an app built by `createHttpApp` (whose error handler turns what this
 * throws into `{"error":{"code","message"}}`). Every route needs `Authorization: Bearer <token>`. Bodies are
 * JSON (up to {@link ADMIN_MAX_BODY_BYTES}), parsed here since the app itself reads no bodies.
 */
export function createAdminRouter(deps: AdminRouterDeps): Router {
  const { endpoints, delivery } = deps;
  const now = deps.now ?? Date.now;
  const log = deps.logger.child({ component: 'admin-api' });
  const router = Router();

  router.use(requireBearerToken(deps.token));
  router.use(express.json({ limit: ADMIN_MAX_BODY_BYTES, type: ['application/json', 'application/*+json'] }));
  router.use((req, _res, next) => {
    // A body that express.json did not read (another content type) would otherwise be taken as absent.
    if (hasBody(req) && req.body === undefined && !req.is(['application/json', 'application/*+json'])) {
      next(
        new ValidationError('unsupported_media_type', 'the body must be application/json', {
          httpStatus: 415,
        }),
      );
      return;
    }
    next();
  });
  // Until the endpoints topic is read to its end, a lookup could miss an endpoint that exists.
  router.use((_req, _res, next) => {
    next(
      endpoints.ready() ? undefined : new DependencyError('endpoints_loading', 'endpoints are still loading'),
    );
  });

  const endpointOf = (req: Request): Endpoint => {
    const id = String(req.params.id);
    const endpoint = endpoints.get(id);
    if (!endpoint) throw new EndpointNotFoundError(id);
    return endpoint;
  };
  const checkUrl = (url: unknown) => {
    if (typeof url === 'string' && deps.checkUrl) deps.checkUrl(url);
  };
  const body = (req: Request): unknown => req.body ?? {};

  router.post('/endpoints', async (req, res) => {
    const input = body(req) as CreateEndpointInput;
    checkUrl((input as { url?: unknown }).url);
    const endpoint = await endpoints.create(input, now());
    res.status(201).location(`${req.baseUrl}/endpoints/${endpoint.id}`);
    // The only answer besides GET .../secret that carries the secret.
    res.json({ ...publicView(endpoint), secret: endpoint.secrets.current });
  });

  router.get('/endpoints', (_req, res) => {
    res.json({ data: endpoints.list().map(publicView) });
  });

  router.get('/endpoints/:id', (req, res) => {
    res.json(publicView(endpointOf(req)));
  });

  router.patch('/endpoints/:id', async (req, res) => {
    const patch = body(req) as UpdateEndpointInput;
    checkUrl((patch as { url?: unknown }).url);
    const endpoint = await endpoints.update(String(req.params.id), patch, now());
    res.json(publicView(endpoint));
  });

  router.delete('/endpoints/:id', async (req, res) => {
    const id = String(req.params.id);
    if (!(await endpoints.remove(id))) throw new EndpointNotFoundError(id);
    res.status(204).end();
  });

  router.get('/endpoints/:id/secret', (req, res) => {
    res.json({ secret: endpointOf(req).secrets.current });
  });

  router.post('/endpoints/:id/secret/rotate', async (req, res) => {
    const endpoint = await endpoints.rotateSecret(String(req.params.id), now());
    res.json({ secret: endpoint.secrets.current });
  });

  router.get('/endpoints/:id/attempts', async (req, res) => {
    const { id } = endpointOf(req);
    const { limit } = parseOrThrow(attemptsQuery, req.query);
    res.json({ data: await delivery.attemptsForEndpoint(id, limit) });
  });

  router.post('/endpoints/:id/recover', async (req, res) => {
    const endpoint = endpointOf(req);
    const { since } = parseOrThrow(recoverBody, body(req));
    const sinceMs = Date.parse(since);
    if (sinceMs > now()) throw new ValidationError('invalid_request', 'since: must not be in the future');
    if (!endpoint.enabled) {
      throw new AppError(
        'endpoint_disabled',
        `endpoint ${endpoint.id} is disabled (${endpoint.disabledReason ?? 'manual'}); enable it first with PATCH {"enabled": true}`,
        false,
        409,
      );
    }
    const result = await delivery.recover(endpoint.id, sinceMs);
    log.info({ endpointId: endpoint.id, since, queued: result.queued }, 'recovery requested');
    res.status(202).json({ queued: result.queued });
  });

  router.get('/messages/:id/attempts', async (req, res) => {
    res.json({ data: await delivery.attemptsForMessage(String(req.params.id)) });
  });

  router.post('/messages/:id/retry', async (req, res) => {
    const { endpointId } = parseOrThrow(retryBody, body(req));
    if (endpointId !== undefined && !endpoints.get(endpointId)) throw new EndpointNotFoundError(endpointId);
    const messageId = String(req.params.id);
    const result = await delivery.retryMessage(messageId, endpointId);
    log.info({ messageId, endpointId, queued: result.queued }, 'retry requested');
    res.status(202).json({ queued: result.queued });
  });

  router.get('/dead-letters', async (req, res) => {
    const { limit, endpointId } = parseOrThrow(deadLettersQuery, req.query);
    res.json({ data: await delivery.deadLetters({ endpointId, limit }) });
  });

  const mapBodyErrors = (err: unknown, _req: Request, _res: Response, next: NextFunction) =>
    next(bodyError(err) ?? err);
  router.use(mapBodyErrors);
  return router;
}
