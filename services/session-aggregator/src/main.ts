import { createLogger, createMetricsRegistry } from '@ampflow/observability';
import { createKafka } from '@ampflow/kafka';
import { Topics } from '@ampflow/contracts';
import { bootstrap } from '@ampflow/runtime';
import { createRedisClient } from '@ampflow/runtime/redis';
import { createAggregatorApp } from './app';
import { readConfig } from './config';

bootstrap(
  {
    service: 'session-aggregator',
    readConfig,
    logLevel: (config) => config.LOG_LEVEL,
    createService: (config, logger, fail) =>
      createAggregatorApp({
        settings: {
          httpPort: config.HTTP_PORT,
          schemaRegistryUrl: config.SCHEMA_REGISTRY_URL,
          shutdownDrainMs: config.SHUTDOWN_DRAIN_MS,
          consumerGroupId: config.AGGREGATOR_GROUP_ID,
          redisNamespace: config.AGGREGATOR_REDIS_NAMESPACE,
          changelogTopic: config.AGGREGATOR_CHANGELOG_TOPIC,
          stateCacheEntries: config.AGGREGATOR_STATE_CACHE_ENTRIES,
          sessionsTopicPartitions: config.SESSIONS_TOPIC_PARTITIONS,
          telemetryTopic: config.KAFKA_TOPIC_PREFIX + Topics.vehicleTelemetry,
          sessionsTopic: config.KAFKA_TOPIC_PREFIX + Topics.chargingSessions,
          sweepIntervalMs: config.SESSION_SWEEP_INTERVAL_MS,
          stateTtlSeconds: config.VEHICLE_STATE_TTL_SECONDS,
          inactivityTimeoutMs: config.SESSION_INACTIVITY_TIMEOUT_MS,
          updateMinIntervalMs: config.SESSION_UPDATE_MIN_INTERVAL_MS,
          recentEventIdLimit: 64,
          notReadyAfterMs: config.NOT_READY_AFTER_MS,
          stuckExitMs: config.STUCK_EXIT_MS,
        },
        kafka: createKafka({ brokers: config.KAFKA_BROKERS, clientId: 'ampflow-session-aggregator', logger }),
        redis: createRedisClient(config.REDIS_URL, {
          lazyConnect: true,
          maxRetriesPerRequest: 3,
          enableAutoPipelining: true,
        }),
        logger,
        registry: createMetricsRegistry('session-aggregator'),
        onFatal: (error) => fail('stuck', error),
      }),
  },
  process,
  createLogger,
);
