import express, { type Express, type Router } from 'express';
import type { Registry } from '@ampflow/observability';

/** Named dependency checks; the service is ready when every one is true. */
export type ReadinessProbe = () => Record<string, boolean>;

/**
 * `/healthz` answers 200 while the process runs; `/readyz` answers 200 only while every dependency check
 * passes (503 otherwise, with the failing checks); `/metrics` is the Prometheus text format.
 */
export function opsRouter(registry: Registry, readiness: ReadinessProbe): Router {
  const router = express.Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', (_req, res) => {
    const checks = readiness();
    const ready = Object.values(checks).every(Boolean);
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', checks });
  });
  router.get('/metrics', async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });
  return router;
}

/** An express app that serves only the ops routes (for services without an HTTP API of their own). */
export function createOpsApp(registry: Registry, readiness: ReadinessProbe): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(opsRouter(registry, readiness));
  return app;
}
