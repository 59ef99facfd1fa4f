import type { Logger, Registry } from '@ampflow/observability';
import { startHttpServer, type RunningHttpServer } from './http-server';
import type { Service } from './lifecycle';
import { createOpsListener, type ReadinessProbe } from './ops-routes';

export interface OpsServiceOptions {
  name: string;
  httpPort: number;
  shutdownDrainMs: number;
  registry: Registry;
  logger: Logger;
  readiness: ReadinessProbe;
  /** Connects the dependencies and starts the work; called after the ops endpoints listen. */
  start(): Promise<void>;
  /** Stops the work and closes the dependencies; called after the ops endpoints stopped. */
  stop(): Promise<void>;
}

/**
 * A service whose only HTTP surface is `/healthz`, `/readyz` and `/metrics` (normalizer, session aggregator,
 * notifier): the endpoints listen first, so readiness can be watched while dependencies connect. Served by
 * plain `node:http`: such a service never loads express.
 */
export function createOpsService(options: OpsServiceOptions): Service & { port(): number } {
  const http = createOpsListener(options.registry, options.readiness);
  let server: RunningHttpServer | undefined;
  return {
    port: () => server?.port ?? options.httpPort,
    async start() {
      server = await startHttpServer(http, { port: options.httpPort });
      await options.start();
      options.logger.info({ port: server.port }, `${options.name} ready`);
    },
    async stop() {
      await server?.close(options.shutdownDrainMs);
      await options.stop();
    },
  };
}
