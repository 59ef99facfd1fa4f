import { join } from 'node:path';
import express from 'express';
import type { Logger, Registry } from '@ampflow/observability';
import { startHttpServer, type RunningHttpServer, type Service } from '@ampflow/runtime';
import { createHttpApp } from '@ampflow/runtime/http';
import { createSessionAuth } from './auth/session-routes';
import { createTokenSigner } from './auth/tokens';
import { createConsoleMetrics } from './metrics';
import { createNotifierClient } from './notifier-client';
import { createNotifierProxy } from './notifier-proxy';
import type { OpsData } from './ops-data';
import { securityHeaders } from './security-headers';

export interface ConsoleSettings {
  httpPort: number;
  httpHost: string;
  /** The notifier's base URL (its admin API is `<notifierUrl>/v1`). */
  notifierUrl: string;
  /** NOTIFIER_ADMIN_TOKEN: what the operator signs in with, and what the console calls the notifier with. */
  adminToken: string;
  /** CONSOLE_SESSION_KEY: signs session cookies and portal links. */
  sessionKey: string;
  sessionTtlMs: number;
  portalLinkMaxTtlMs: number;
  notifierTimeoutMs: number;
  shutdownDrainMs: number;
  /** The bundled page (app.js, app.css); default `dist/public` of this workspace. */
  publicDir?: string;
}

export interface ConsoleDeps {
  settings: ConsoleSettings;
  /** The operator-only data API (trace, sessions, pipeline), mounted at `/api/ops`. */
  opsData: OpsData;
  logger: Logger;
  registry: Registry;
  now?: () => number;
}

export interface ConsoleApp extends Service {
  port(): number;
}

/** The bundle, from `src/` (tests) and `dist/` (the service) alike. */
export const DEFAULT_PUBLIC_DIR = join(__dirname, '..', 'dist', 'public');

/**
 * The console: the page shell and its bundled script, sign-in (a signed session cookie), portal links, the
 * notifier's admin API proxied under `/api/v1` (scoped for portal sessions), and the operator's data API under
 * `/api/ops`. Holds no state: sessions and links are signed tokens, everything shown is read from the notifier
 * and the platform's topics and metrics.
 */
export function createConsoleApp(deps: ConsoleDeps): ConsoleApp {
  const { settings, logger, registry, opsData } = deps;
  const now = deps.now ?? Date.now;
  const { logins } = createConsoleMetrics(registry);
  const auth = createSessionAuth({
    settings: {
      adminToken: settings.adminToken,
      sessionTtlMs: settings.sessionTtlMs,
      portalLinkMaxTtlMs: settings.portalLinkMaxTtlMs,
    },
    signer: createTokenSigner(settings.sessionKey),
    now,
    logins,
  });
  const notifier = createNotifierClient({
    baseUrl: settings.notifierUrl,
    adminToken: settings.adminToken,
    timeoutMs: settings.notifierTimeoutMs,
  });
  const app = createHttpApp({
    logger,
    registry,
    readiness: () => ({ opsData: opsData.ready() }),
    routes: (app) => {
      app.use(securityHeaders);
      app.use(
        '/assets',
        express.static(settings.publicDir ?? DEFAULT_PUBLIC_DIR, {
          index: false,
          fallthrough: true,
          maxAge: 0,
        }),
      );
      app.use(auth.pages);
      app.use('/api', auth.api);
      app.use('/api', auth.apiRoutes);
      app.use('/api/v1', createNotifierProxy(notifier));
      app.use('/api/ops', auth.operatorOnly, opsData.router);
    },
  });
  let server: RunningHttpServer | undefined;
  return {
    port: () => server?.port ?? settings.httpPort,
    async start() {
      await opsData.start();
      server = await startHttpServer(app, { port: settings.httpPort, host: settings.httpHost });
      logger.info({ port: server.port, notifierUrl: settings.notifierUrl }, 'console listening');
    },
    async stop() {
      await server?.close(settings.shutdownDrainMs);
      await opsData.stop();
    },
  };
}
