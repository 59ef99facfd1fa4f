import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Registry } from '@ampflow/observability';
import { toHttpError } from './errors';

/** Named dependency checks; the service is ready when every one is true. */
export type ReadinessProbe = () => Record<string, boolean>;

/**
 * Answers a request when it is one of the ops routes and returns true; returns false (nothing sent) otherwise.
 * Plain `node:http`, so services without an HTTP API of their own never load express.
 */
export type OpsRoutes = (req: IncomingMessage, res: ServerResponse) => boolean;

/** Writes `body` as JSON with `status`. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(text));
  res.end(text);
}

/** The JSON 404 every service answers for a route it does not have. */
export function sendNotFound(res: ServerResponse): void {
  sendJson(res, 404, { error: { code: 'not_found', message: 'no such route' } });
}

/**
 * `GET /healthz` answers 200 while the process runs; `GET /readyz` answers 200 only while every dependency
 * check passes (503 otherwise, with the failing checks); `GET /metrics` is the Prometheus text format.
 * HEAD is answered like GET, without the body.
 */
export function opsRoutes(registry: Registry, readiness: ReadinessProbe): OpsRoutes {
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const path = (req.url ?? '/').split('?', 1)[0];
    if (path === '/healthz') {
      sendJson(res, 200, { status: 'ok' });
      return true;
    }
    if (path === '/readyz') {
      const checks = readiness();
      const ready = Object.values(checks).every(Boolean);
      sendJson(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not_ready', checks });
      return true;
    }
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => {
          res.statusCode = 200;
          res.setHeader('content-type', registry.contentType);
          res.end(text);
        },
        (err: unknown) => {
          const { status, body } = toHttpError(err);
          sendJson(res, status, body);
        },
      );
      return true;
    }
    return false;
  };
}

/** A request listener that serves only the ops routes, with a JSON 404 for anything else. */
export function createOpsListener(registry: Registry, readiness: ReadinessProbe): RequestListener {
  const routes = opsRoutes(registry, readiness);
  return (req, res) => {
    if (!routes(req, res)) sendNotFound(res);
  };
}
