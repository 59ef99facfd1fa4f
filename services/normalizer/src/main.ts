import { createLogger, createMetricsRegistry } from '@ampflow/observability';
import { createKafka } from '@ampflow/kafka';
import { Topics } from '@ampflow/contracts';
import { bootstrap } from '@ampflow/runtime';
import { createNormalizerApp } from './app';
import { readConfig } from './config';

bootstrap(
  {
    service: 'normalizer',
    readConfig,
    logLevel: (config) => config.LOG_LEVEL,
    createService: (config, logger, fail) =>
      createNormalizerApp({
        settings: {
          httpPort: config.HTTP_PORT,
          schemaRegistryUrl: config.SCHEMA_REGISTRY_URL,
          shutdownDrainMs: config.SHUTDOWN_DRAIN_MS,
          consumerGroupId: config.NORMALIZER_GROUP_ID,
          canonicalTopicPartitions: config.CANONICAL_TOPIC_PARTITIONS,
          rawTopics: [Topics.rawSmartcar, Topics.rawTelematica].map((t) => config.KAFKA_TOPIC_PREFIX + t),
          canonicalTopicName: (topic) => config.KAFKA_TOPIC_PREFIX + topic,
          notReadyAfterMs: config.NOT_READY_AFTER_MS,
          stuckExitMs: config.STUCK_EXIT_MS,
        },
        kafka: createKafka({ brokers: config.KAFKA_BROKERS, clientId: 'ampflow-normalizer', logger }),
        logger,
        registry: createMetricsRegistry('normalizer'),
        onFatal: (error) => fail('stuck', error),
      }),
  },
  process,
  createLogger,
);
