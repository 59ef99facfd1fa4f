import { createRedisClient } from '@ampflow/runtime/redis';
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
    createService: (config, logger, fail) => {
      if (config.NOTIFIER_ALLOW_HTTP || config.NOTIFIER_ALLOWED_NETWORKS.length > 0) {
        logger.warn(
          { allowHttp: config.NOTIFIER_ALLOW_HTTP, allowedNetworks: config.NOTIFIER_ALLOWED_NETWORKS },
          'endpoint safety relaxed: deliveries may go to these networks / over plain http',
        );
      }
      return createNotifierApp({
        settings: {
          httpPort: config.HTTP_PORT,
          schemaRegistryUrl: config.SCHEMA_REGISTRY_URL,
          adminToken: config.NOTIFIER_ADMIN_TOKEN,
          secretsKeys: {
            current: config.NOTIFIER_SECRETS_KEY,
            ...(config.NOTIFIER_SECRETS_KEY_PREVIOUS && { previous: config.NOTIFIER_SECRETS_KEY_PREVIOUS }),
          },
          shutdownDrainMs: config.SHUTDOWN_DRAIN_MS,
          groupId: config.NOTIFIER_GROUP_ID,
          topicPrefix: config.KAFKA_TOPIC_PREFIX,
          redisNamespace: config.NOTIFIER_REDIS_NAMESPACE,
          retryTopicPartitions: config.NOTIFIER_RETRY_TOPIC_PARTITIONS,
          deliveryTopicPartitions: config.NOTIFIER_DELIVERY_TOPIC_PARTITIONS,
          ...(config.NOTIFIER_HANDOVER_MS !== undefined && { handoverMs: config.NOTIFIER_HANDOVER_MS }),
          retryScheduleMs: config.NOTIFIER_RETRY_SCHEDULE,
          retryAfterMaxMs: config.NOTIFIER_RETRY_AFTER_MAX_MS,
          allowedNetworks: config.NOTIFIER_ALLOWED_NETWORKS,
          allowHttp: config.NOTIFIER_ALLOW_HTTP,
          requestTimeoutMs: config.NOTIFIER_REQUEST_TIMEOUT_MS,
          endpointConcurrency: config.NOTIFIER_ENDPOINT_CONCURRENCY,
          maxQueuePerEndpoint: config.NOTIFIER_MAX_QUEUE_PER_ENDPOINT,
          secretRotationOverlapMs: config.NOTIFIER_SECRET_ROTATION_OVERLAP_MS,
          disableAfterFailingMs: config.NOTIFIER_DISABLE_AFTER_FAILING_MS,
          circuitFailures: config.NOTIFIER_CIRCUIT_FAILURES,
          circuitCooldownMs: config.NOTIFIER_CIRCUIT_COOLDOWN_MS,
          attemptRetentionMs: config.NOTIFIER_ATTEMPT_RETENTION_MS,
          notReadyAfterMs: config.NOT_READY_AFTER_MS,
          stuckExitMs: config.STUCK_EXIT_MS,
        },
        kafka: createKafka({ brokers: config.KAFKA_BROKERS, clientId: 'ampflow-notifier', logger }),
        redis: createRedisClient(config.REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 3 }),
        logger,
        registry: createMetricsRegistry('notifier'),
        onFatal: (error) => fail('stuck', error),
      });
    },
  },
  process,
  createLogger,
);
