import type Redis from 'ioredis';
import type { Kafka } from 'kafkajs';
import { createReliableProducer } from '@ampflow/kafka';
import type { Logger, Registry } from '@ampflow/observability';
import { createOpsApp, startHttpServer, type RunningHttpServer, type Service } from '@ampflow/runtime';

export interface AggregatorDeps {
  settings: { httpPort: number; shutdownDrainMs: number };
  kafka: Kafka;
  redis: Redis;
  logger: Logger;
  registry: Registry;
}

/**
 * The session aggregator's shell: holds its Redis and Kafka connections and serves the ops endpoints.
 * The session reducer and its consumer land with the session-aggregator issue.
 */
export function createAggregatorApp(deps: AggregatorDeps): Service & { port(): number } {
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
      logger.info({ port: server.port }, 'session aggregator ready');
    },
    async stop() {
      await server?.close(settings.shutdownDrainMs);
      await producer.disconnect();
      await redis.quit();
    },
  };
}
