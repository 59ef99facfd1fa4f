import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import type { Logger } from '@ampflow/observability';
import { AppError, DependencyError, ValidationError } from '@ampflow/runtime';
import {
  EndpointNotFoundError,
  ownerSchema,
  parseOrThrow,
  publicView,
  type CreateEndpointInput,
  type Endpoint,
  type UpdateEndpointInput,
} from '../endpoints/model';
import type { EndpointStore } from '../endpoints/store';
import { DELIVERY_STATUSES, decodeCursor, encodeCursor } from '../history/message-log-model';
import { requireBearerToken } from './auth';
import type { DeliveryControl } from './delivery-control';
import type { AdminMessageLog } from './message-log';

/** Largest admin request body, bytes (64 KiB): an endpoint with 3 full 1000-entry filters still fits. */
export const ADMIN_MAX_BODY_BYTES = 64 * 1024;

export interface AdminRouterDeps {
  /** NOTIFIER_ADMIN_TOKEN; compared in constant time, never logged. */
  token: string;
  endpoints: EndpointStore;
  delivery: DeliveryControl;
  /**
   * The message log, endpoint health, test events and bulk re-sends (src/history). Absent only in tests of the
   * other routes: endpoints are then shown without `health`, and its routes answer 503 `message_log_unavailable`.
   */
  messages?: AdminMessageLog;
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
const isoTime = z.iso.datetime({
  offset: true,
  error: 'must be an ISO-8601 time such as 2025-01-31T12:00:00Z',
});
const recoverBody = z.strictObject({ since: isoTime });
const endpointsQuery = z.strictObject({ owner: ownerSchema.optional() });
const idField = z.string().min(1, 'must not be empty').max(100, 'must be at most 100 characters');
const messagesQuery = z.strictObject({
  endpointId: idField.optional(),
  eventType: idField.optional(),
  vehicle: z.string().min(1, 'must not be empty').max(200, 'must be at most 200 characters').optional(),
  status: z.enum(DELIVERY_STATUSES, { error: `must be one of ${DELIVERY_STATUSES.join(', ')}` }).optional(),
  since: isoTime.optional(),
  until: isoTime.optional(),
  limit: limitQuery(500, 50),
  cursor: z.string().max(1000, 'must be at most 1000 characters').optional(),
});
const bulkRetryBody = z.strictObject({
  endpointId: idField.optional(),
  eventType: idField.optional(),
  status: z.enum(['failed', 'dead'], { error: 'must be failed or dead' }).optional(),
  since: isoTime.optional(),
  until: isoTime.optional(),
  limit: z
    .number({ error: 'must be a number' })
    .int('must be an integer')
    .min(1, 'must be at least 1')
    .max(1000, 'must be at most 1000')
    .default(100),
});

/** `since` and `until` as epoch ms; 400 when `since` is not before `until`. */
function timeRange(range: { since?: string; until?: string }): { sinceMs?: number; untilMs?: number } {
  const sinceMs = range.since === undefined ? undefined : Date.parse(range.since);
  const untilMs = range.until === undefined ? undefined : Date.parse(range.until);
  if (sinceMs !== undefined && untilMs !== undefined && sinceMs >= untilMs)
    throw new ValidationError('invalid_request', 'since: must be before until');
  return { ...(sinceMs !== undefined && { sinceMs }), ...(untilMs !== undefined && { untilMs }) };
}

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
  const messageLog = (): AdminMessageLog => {
    if (!deps.messages)
      throw new DependencyError('message_log_unavailable', 'the message log is not configured');
    return deps.messages;
  };
  const disabledError = (endpoint: Endpoint) =>
    new AppError(
      'endpoint_disabled',
      `endpoint ${endpoint.id} is disabled (${endpoint.disabledReason ?? 'manual'}); enable it first with PATCH {"enabled": true}`,
      false,
      409,
    );
  /** Public views, with `health` when the message log is there. */
  const views = async (list: Endpoint[]) => {
    const health = deps.messages ? await deps.messages.health(list) : undefined;
    return list.map((endpoint) => {
      const view = publicView(endpoint);
      const h = health?.get(endpoint.id);
      return h ? { ...view, health: h } : view;
    });
  };

  router.post('/endpoints', async (req, res) => {
    const input = body(req) as CreateEndpointInput;
    checkUrl((input as { url?: unknown }).url);
    const endpoint = await endpoints.create(input, now());
    res.status(201).location(`${req.baseUrl}/endpoints/${endpoint.id}`);
    // The only answer besides GET .../secret that carries the secret.
    res.json({ ...publicView(endpoint), secret: endpoint.secrets.current });
  });

  router.get('/endpoints', async (req, res) => {
    const { owner } = parseOrThrow(endpointsQuery, req.query);
    const list = endpoints.list().filter((e) => owner === undefined || e.owner === owner);
    res.json({ data: await views(list) });
  });

  router.get('/endpoints/:id', async (req, res) => {
    const [view] = await views([endpointOf(req)]);
    res.json(view);
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
    if (!endpoint.enabled) throw disabledError(endpoint);
    const result = await delivery.recover(endpoint.id, sinceMs);
    log.info({ endpointId: endpoint.id, since, queued: result.queued }, 'recovery requested');
    res.status(202).json({ queued: result.queued });
  });

  router.post('/endpoints/:id/test', async (req, res) => {
    const endpoint = endpointOf(req);
    parseOrThrow(z.strictObject({}), body(req));
    if (!endpoint.enabled) throw disabledError(endpoint);
    const { messageId } = await messageLog().sendTest(endpoint);
    log.info({ endpointId: endpoint.id, messageId }, 'test message sent');
    res.status(202).json({ messageId });
  });

  router.get('/messages', async (req, res) => {
    const query = parseOrThrow(messagesQuery, req.query);
    const cursor = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    if (cursor === null)
      throw new ValidationError('invalid_request', 'cursor: not a cursor this API returned');
    const page = await messageLog().list({
      ...(query.endpointId !== undefined && { endpointId: query.endpointId }),
      ...(query.eventType !== undefined && { eventType: query.eventType }),
      ...(query.vehicle !== undefined && { vehicle: query.vehicle }),
      ...(query.status !== undefined && { status: query.status }),
      ...timeRange(query),
      limit: query.limit,
      ...(cursor !== undefined && { cursor }),
    });
    res.json(
      page.nextCursor ? { data: page.data, nextCursor: encodeCursor(page.nextCursor) } : { data: page.data },
    );
  });

  router.post('/messages/retry', async (req, res) => {
    const selection = parseOrThrow(bulkRetryBody, body(req));
    if (selection.endpointId !== undefined && !endpoints.get(selection.endpointId))
      throw new EndpointNotFoundError(selection.endpointId);
    const { retried } = await messageLog().retryMatching({
      ...(selection.endpointId !== undefined && { endpointId: selection.endpointId }),
      ...(selection.eventType !== undefined && { eventType: selection.eventType }),
      ...(selection.status !== undefined && { status: selection.status }),
      ...timeRange(selection),
      limit: selection.limit,
    });
    log.info({ ...selection, retried }, 'bulk retry requested');
    res.status(202).json({ retried });
  });

  router.get('/messages/:id', async (req, res) => {
    const messageId = String(req.params.id);
    const detail = await messageLog().get(messageId);
    if (!detail)
      throw new AppError(
        'message_not_found',
        `no message ${messageId} is known (the log keeps messages for the attempt retention)`,
        false,
        404,
      );
    res.json(detail);
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
