import type Redis from 'ioredis';
import type { Kafka } from 'kafkajs';
import { createReliableProducer } from '@ampflow/kafka';
import type { Logger, Registry } from '@ampflow/observability';
import { createOpsService, type Service } from '@ampflow/runtime';

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
  const { redis } = deps;
  const producer = createReliableProducer(deps.kafka);
  return createOpsService({
    name: 'session aggregator',
    ...deps.settings,
    registry: deps.registry,
    logger: deps.logger,
    readiness: () => ({ kafka: producer.isConnected(), redis: redis.status === 'ready' }),
    start: async () => {
      await Promise.all([producer.connect(), redis.connect()]);
    },
    stop: async () => {
      await producer.disconnect();
      await redis.quit();
    },
  });
}
