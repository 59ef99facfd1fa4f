import type Redis from 'ioredis';
import type { Kafka } from 'kafkajs';
import { createReliableProducer, createWorkHealth } from '@ampflow/kafka';
import type { Logger, Registry } from '@ampflow/observability';
import { createOpsService, type Service } from '@ampflow/runtime';

export interface NotifierDeps {
  settings: {
    httpPort: number;
    shutdownDrainMs: number;
    /** Not ready after this long without a Kafka acknowledgement; `onFatal` after `stuckExitMs` (30 s, 5 min). */
    notReadyAfterMs?: number;
    stuckExitMs?: number;
  };
  kafka: Kafka;
  redis: Redis;
  logger: Logger;
  registry: Registry;
  /** Called when the notifier is stuck (no Kafka acknowledgement for 5 min); `main.ts` exits. */
  onFatal: (error: unknown) => void;
}

/**
 * The notifier's shell: holds its Redis and Kafka connections and serves the ops endpoints.
 * The admin API (`/v1/...`) and the delivery worker land with the notifier issue; the admin API will need
 * its own router, at which point this moves off the ops-only shell.
 */
export function createNotifierApp(deps: NotifierDeps): Service & { port(): number } {
  const { redis } = deps;
  const producer = createReliableProducer(deps.kafka, { logger: deps.logger });
  const { notReadyAfterMs, stuckExitMs, ...http } = deps.settings;
  const work = createWorkHealth({
    producer,
    notReadyAfterMs,
    fatalAfterMs: stuckExitMs,
    onFatal: deps.onFatal,
  });
  return createOpsService({
    name: 'notifier',
    ...http,
    registry: deps.registry,
    logger: deps.logger,
    readiness: () => ({ ...work.detail(), redis: redis.status === 'ready' }),
    start: async () => {
      await Promise.all([producer.connect(), redis.connect()]);
      work.start();
    },
    stop: async () => {
      work.stop();
      await producer.disconnect();
      await redis.quit();
    },
  });
}
