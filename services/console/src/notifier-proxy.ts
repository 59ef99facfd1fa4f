import express, { Router, type Request, type Response } from 'express';
import { AppError, ValidationError } from '@ampflow/runtime';
import type { Principal } from './auth/tokens';
import type { Json, NotifierAnswer, NotifierClient } from './notifier-client';
import { isOwnedBy, ownedEndpointIds, scopeList, scopeMessage } from './portal-scope';

/** Largest body the console forwards (the notifier's own limit). */
export const PROXY_MAX_BODY_BYTES = 64 * 1024;

const notFound = (what: string) => new AppError('not_found', `no ${what}`, false, 404);
const forbidden = (message: string) => new AppError('forbidden', message, false, 403);

/** The query string of the browser's request, as given (only for allow-listed routes). */
const queryOf = (req: Request) => new URLSearchParams(req.originalUrl.split('?')[1] ?? '');

const principalOf = (res: Response): Principal => res.locals.principal as Principal;

/**
 * `/api/v1/...` → the notifier's `/v1/...`, called with the admin token (the browser never holds it). Only the
 * routes listed here are forwarded; anything else is 404. An operator's request is passed through; a portal
 * session's (one `owner`) is checked and filtered: every endpoint id it names, and every message's endpoint,
 * must be the owner's, lists are filtered to the owner's rows, and a foreign id answers 404 as a missing one.
 */
export function createNotifierProxy(notifier: NotifierClient): Router {
  const router = Router();
  router.use(express.json({ limit: PROXY_MAX_BODY_BYTES }));

  const send = (res: Response, answer: NotifierAnswer, body: Json = answer.body) => {
    if (answer.status === 204 || body === null) res.status(answer.status).end();
    else res.status(answer.status).json(body);
  };
  const pass = async (req: Request, res: Response, path: string, body?: unknown) =>
    send(res, await notifier.call(req.method, path, { query: queryOf(req), body }));

  /** The owner's endpoint ids, read from the notifier for this request (never cached: ownership may change). */
  const ownedIds = async (owner: string) => {
    const answer = await notifier.call('GET', '/endpoints', { query: new URLSearchParams({ owner }) });
    if (answer.status !== 200)
      throw new AppError('notifier_error', 'the notifier refused the endpoint list', true, 502);
    return ownedEndpointIds(answer.body, owner);
  };
  /** 404 unless endpoint `id` exists and is the owner's. */
  const requireOwnedEndpoint = async (owner: string, id: string) => {
    const answer = await notifier.call('GET', `/endpoints/${encodeURIComponent(id)}`);
    if (answer.status !== 200 || !isOwnedBy(answer.body, owner)) throw notFound(`endpoint ${id}`);
    return answer.body;
  };
  /** The `endpointId` a portal request must name (query or body), checked to be the owner's. */
  const requireOwnedEndpointParam = async (owner: string, value: unknown) => {
    if (typeof value !== 'string' || value.length === 0)
      throw new ValidationError(
        'endpoint_required',
        'endpointId: a portal request must name one of your endpoints',
      );
    await requireOwnedEndpoint(owner, value);
    return value;
  };
  const bodyOf = (req: Request): Json => (req.body && typeof req.body === 'object' ? req.body : {});
  const id = (req: Request) => encodeURIComponent(String(req.params.id));

  router.get('/endpoints', async (req, res) => {
    const p = principalOf(res);
    if (p.role === 'operator') return pass(req, res, '/endpoints');
    const answer = await notifier.call('GET', '/endpoints', {
      query: new URLSearchParams({ owner: p.owner }),
    });
    send(
      res,
      answer,
      answer.status === 200
        ? { ...answer.body, data: (answer.body?.data ?? []).filter((e: Json) => isOwnedBy(e, p.owner)) }
        : answer.body,
    );
  });

  router.post('/endpoints', async (req, res) => {
    const p = principalOf(res);
    if (p.role === 'operator') return pass(req, res, '/endpoints', req.body);
    // A customer's endpoint is always theirs, whatever the body says.
    return pass(req, res, '/endpoints', { ...bodyOf(req), owner: p.owner });
  });

  /** Routes about one endpoint: the portal may use them for its own endpoints only. */
  const endpointRoute = (method: 'get' | 'patch' | 'delete' | 'post', suffix: string) =>
    router[method](`/endpoints/:id${suffix}`, async (req, res) => {
      const p = principalOf(res);
      if (p.role === 'portal') {
        await requireOwnedEndpoint(p.owner, String(req.params.id));
        const body = bodyOf(req);
        if (method === 'patch' && 'owner' in body && body.owner !== p.owner)
          throw forbidden('a portal session cannot give an endpoint to another owner');
      }
      return pass(
        req,
        res,
        `/endpoints/${id(req)}${suffix}`,
        method === 'get' || method === 'delete' ? undefined : req.body,
      );
    });
  endpointRoute('get', '');
  endpointRoute('patch', '');
  endpointRoute('delete', '');
  endpointRoute('get', '/secret');
  endpointRoute('post', '/secret/rotate');
  endpointRoute('get', '/attempts');
  endpointRoute('post', '/recover');
  endpointRoute('post', '/test');

  router.get('/messages', async (req, res) => {
    const p = principalOf(res);
    if (p.role === 'operator') return pass(req, res, '/messages');
    await requireOwnedEndpointParam(p.owner, req.query.endpointId);
    const answer = await notifier.call('GET', '/messages', { query: queryOf(req) });
    send(
      res,
      answer,
      answer.status === 200 ? scopeList(answer.body, new Set([String(req.query.endpointId)])) : answer.body,
    );
  });

  router.post('/messages/retry', async (req, res) => {
    const p = principalOf(res);
    if (p.role === 'portal') await requireOwnedEndpointParam(p.owner, bodyOf(req).endpointId);
    return pass(req, res, '/messages/retry', req.body);
  });

  router.get('/messages/:id', async (req, res) => {
    const p = principalOf(res);
    if (p.role === 'operator') return pass(req, res, `/messages/${id(req)}`);
    const answer = await notifier.call('GET', `/messages/${id(req)}`);
    if (answer.status !== 200) return send(res, answer);
    const scoped = scopeMessage(answer.body, await ownedIds(p.owner));
    if (!scoped) throw notFound(`message ${String(req.params.id)}`);
    res.json(scoped);
  });

  router.get('/messages/:id/attempts', async (req, res) => {
    const p = principalOf(res);
    if (p.role === 'operator') return pass(req, res, `/messages/${id(req)}/attempts`);
    const answer = await notifier.call('GET', `/messages/${id(req)}/attempts`);
    if (answer.status !== 200) return send(res, answer);
    const scoped = scopeList(answer.body, await ownedIds(p.owner));
    if (scoped.data.length === 0) throw notFound(`message ${String(req.params.id)}`);
    res.json(scoped);
  });

  /**
   * Whether message `messageId` went to `endpointId`: its detail lists the endpoint, or one of its attempts was
   * to it. The notifier re-sends a message to whatever endpoint a retry names, so a portal's retry must not carry
   * another owner's message to the portal's endpoint.
   */
  const messageWentTo = async (messageId: string, endpointId: string) => {
    const path = `/messages/${encodeURIComponent(messageId)}`;
    const detail = await notifier.call('GET', path);
    const listed: Json[] =
      detail.status === 200 && Array.isArray(detail.body?.endpoints) ? detail.body.endpoints : [];
    if (listed.some((e) => e?.endpointId === endpointId)) return true;
    const attempts = await notifier.call('GET', `${path}/attempts`);
    const tried: Json[] =
      attempts.status === 200 && Array.isArray(attempts.body?.data) ? attempts.body.data : [];
    return tried.some((a) => a?.endpointId === endpointId);
  };

  router.post('/messages/:id/retry', async (req, res) => {
    const p = principalOf(res);
    if (p.role === 'portal') {
      const endpointId = await requireOwnedEndpointParam(p.owner, bodyOf(req).endpointId);
      if (!(await messageWentTo(String(req.params.id), endpointId)))
        throw notFound(`message ${String(req.params.id)} for endpoint ${endpointId}`);
    }
    return pass(req, res, `/messages/${id(req)}/retry`, req.body);
  });

  router.get('/dead-letters', async (req, res) => {
    const p = principalOf(res);
    if (p.role === 'operator') return pass(req, res, '/dead-letters');
    await requireOwnedEndpointParam(p.owner, req.query.endpointId);
    const answer = await notifier.call('GET', '/dead-letters', { query: queryOf(req) });
    send(
      res,
      answer,
      answer.status === 200 ? scopeList(answer.body, new Set([String(req.query.endpointId)])) : answer.body,
    );
  });

  router.use((_req, _res, next) => next(notFound('such route')));
  router.use((err: unknown, _req: Request, _res: Response, next: (e: unknown) => void) => {
    const type = (err as { type?: string } | null)?.type;
    if (type === 'entity.parse.failed')
      return next(new ValidationError('invalid_json', 'the body is not valid JSON'));
    next(err);
  });
  return router;
}
