import type Redis from 'ioredis';
import type { Kafka } from 'kafkajs';
import { createReliableProducer } from '@ampflow/kafka';
import type { Logger, Registry } from '@ampflow/observability';
import { createOpsApp, startHttpServer, type RunningHttpServer, type Service } from '@ampflow/runtime';

export interface NotifierDeps {
  settings: { httpPort: number; shutdownDrainMs: number };
  kafka: Kafka;
  redis: Redis;
  logger: Logger;
  registry: Registry;
}

/**
 * The notifier's shell: holds its Redis and Kafka connections and serves the ops endpoints.
 * The admin API (`/v1/...`) and the delivery worker land with the notifier issue.
 */
export function createNotifierApp(deps: NotifierDeps): Service & { port(): number } {
  const { settings, logger, registry, redis } = deps;
  const producer = createReliableProducer(deps.kafka);
  let server: RunningHttpServer | undefined;
  const http = createOpsApp(registry, () => ({
    kafka: producer.isConnected(),
    redis: redis.status === 'ready',
  }));

  return {
    port: () => server?.port ?? settings.httpPort,
    async start() {
      server = await startHttpServer(http, { port: settings.httpPort });
      await Promise.all([producer.connect(), redis.connect()]);
      logger.info({ port: server.port }, 'notifier ready');
    },
    async stop() {
      await server?.close(settings.shutdownDrainMs);
      await producer.disconnect();
      await redis.quit();
    },
  };
}
