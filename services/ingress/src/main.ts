import { createLogger, createMetricsRegistry } from '@ampflow/observability';
import { createKafka } from '@ampflow/kafka';
import { rawTopic } from '@ampflow/contracts';
import { bootstrap } from '@ampflow/runtime';
import { createIngressApp } from './app';
import { readConfig } from './config';
import { createRedisSeenStore } from './seen-store';

bootstrap(
  {
    service: 'ingress',
    readConfig,
    logLevel: (config) => config.LOG_LEVEL,
    createService: (config, logger, fail) =>
      createIngressApp({
        settings: {
          httpPort: config.HTTP_PORT,
          httpHost: config.HTTP_HOST,
          smartcarManagementToken: config.SMARTCAR_MANAGEMENT_TOKEN,
          telematicaWebhookSecrets: config.TELEMATICA_WEBHOOK_SECRET,
          maxBodyBytes: config.MAX_BODY_BYTES,
          maxInflightBytes: config.INGRESS_MAX_INFLIGHT_BYTES,
          kafkaPublishTimeoutMs: config.KAFKA_PUBLISH_TIMEOUT_MS,
          kafkaLingerMs: config.KAFKA_LINGER_MS,
          kafkaRequestIntervalMs: config.KAFKA_REQUEST_INTERVAL_MS,
          requestDeadlineMs: config.INGRESS_REQUEST_DEADLINE_MS,
          httpLimits: {
            headersTimeoutMs: config.HTTP_HEADERS_TIMEOUT_MS,
            requestTimeoutMs: config.HTTP_REQUEST_TIMEOUT_MS,
            keepAliveTimeoutMs: config.HTTP_KEEP_ALIVE_TIMEOUT_MS,
            maxConnections: config.HTTP_MAX_CONNECTIONS,
          },
          rawTopicPartitions: config.RAW_TOPIC_PARTITIONS,
          rawRetentionMs: config.RAW_RETENTION_MS,
          topics: {
            smartcar: config.KAFKA_TOPIC_PREFIX + rawTopic('smartcar'),
            telematica: config.KAFKA_TOPIC_PREFIX + rawTopic('telematica'),
          },
          shutdownDrainMs: config.SHUTDOWN_DRAIN_MS,
          notReadyAfterMs: config.NOT_READY_AFTER_MS,
          stuckExitMs: config.STUCK_EXIT_MS,
        },
        kafka: createKafka({
          brokers: config.KAFKA_BROKERS,
          clientId: 'ampflow-ingress',
          logger,
          requestTimeoutMs: 5_000,
        }),
        seenStore: createRedisSeenStore({ url: config.REDIS_URL, ttlSeconds: config.DEDUP_TTL_SECONDS }),
        logger,
        registry: createMetricsRegistry('ingress'),
        onFatal: (error) => fail('stuck', error),
      }),
  },
  process,
  createLogger,
);
