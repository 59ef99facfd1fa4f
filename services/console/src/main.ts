import { createKafka } from '@ampflow/kafka';
import { createLogger, createMetricsRegistry } from '@ampflow/observability';
import { bootstrap } from '@ampflow/runtime';
import { createConsoleApp } from './app';
import { readConfig } from './config';
import { createOpsData } from './ops-data';

bootstrap(
  {
    service: 'console',
    readConfig,
    logLevel: (config) => config.LOG_LEVEL,
    createService: (config, logger) => {
      const registry = createMetricsRegistry('console');
      return createConsoleApp({
        settings: {
          httpPort: config.HTTP_PORT,
          httpHost: config.HTTP_HOST,
          notifierUrl: config.NOTIFIER_URL,
          adminToken: config.NOTIFIER_ADMIN_TOKEN,
          sessionKey: config.CONSOLE_SESSION_KEY,
          sessionTtlMs: config.CONSOLE_SESSION_TTL_MS,
          portalLinkMaxTtlMs: config.CONSOLE_PORTAL_LINK_MAX_TTL_MS,
          notifierTimeoutMs: config.NOTIFIER_TIMEOUT_MS,
          shutdownDrainMs: config.SHUTDOWN_DRAIN_MS,
        },
        opsData: createOpsData({
          kafka: createKafka({ brokers: config.KAFKA_BROKERS, clientId: 'ampflow-console', logger }),
          schemaRegistryUrl: config.SCHEMA_REGISTRY_URL,
          topicPrefix: config.KAFKA_TOPIC_PREFIX,
          metricsTargets: config.CONSOLE_METRICS_TARGETS,
          notifier: { baseUrl: config.NOTIFIER_URL, adminToken: config.NOTIFIER_ADMIN_TOKEN },
          logger,
          registry,
        }),
        logger,
        registry,
      });
    },
  },
  process,
  createLogger,
);
