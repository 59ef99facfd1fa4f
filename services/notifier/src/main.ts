import Redis from 'ioredis';
import { createLogger, createMetricsRegistry } from '@ampflow/observability';
import { createKafka } from '@ampflow/kafka';
import { bootstrap } from '@ampflow/runtime';
import { createNotifierApp } from './app';
import { readConfig } from './config';

bootstrap(
  {
    service: 'notifier',
    readConfig,
    logLevel: (config) => config.LOG_LEVEL,
    createService: (config, logger, fail) =>
      createNotifierApp({
        settings: {
          httpPort: config.HTTP_PORT,
          shutdownDrainMs: config.SHUTDOWN_DRAIN_MS,
          notReadyAfterMs: config.NOT_READY_AFTER_MS,
          stuckExitMs: config.STUCK_EXIT_MS,
        },
        kafka: createKafka({ brokers: config.KAFKA_BROKERS, clientId: 'ampflow-notifier', logger }),
        redis: new Redis(config.REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 3 }),
        logger,
        registry: createMetricsRegistry('notifier'),
        onFatal: (error) => fail('stuck', error),
      }),
  },
  process,
  createLogger,
);
