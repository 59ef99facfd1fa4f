'use strict';

/**
 * The ingress exactly as services/ingress/dist/main.js builds it (same config reader, app, logger,
 * registry, Kafka client), with one or both of its I/O dependencies replaced, to attribute its cost:
 *
 *   BENCH_STUB_REDIS=1  an in-memory SeenStore instead of Redis (same interface, same dedup semantics)
 *   BENCH_STUB_KAFKA=1  the producer's sendBatch resolves at once instead of producing (nothing is written;
 *                       the Kafka client still connects, creates topics and answers readiness as usual)
 *
 * Used only by `npm run bench -- ingress` with BENCH_VARIANTS=1; never a production entry point.
 */
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const dist = (file) => require(path.join(ROOT, 'services', 'ingress', 'dist', file));
const { createLogger, createMetricsRegistry } = require('@ampflow/observability');
const { createKafka } = require('@ampflow/kafka');
const { bootstrap } = require('@ampflow/runtime');
const { createIngressApp } = dist('app.js');
const { readConfig } = dist('config.js');
const { createRedisSeenStore } = dist('seen-store.js');

const stubRedis = process.env.BENCH_STUB_REDIS === '1';
const stubKafka = process.env.BENCH_STUB_KAFKA === '1';

function createMemorySeenStore() {
  const seen = new Set();
  return {
    connect: async () => {},
    isSeen: async (provider, eventId) => seen.has(`${provider}:${eventId}`),
    markSeen: async (provider, eventId) => {
      seen.add(`${provider}:${eventId}`);
    },
    isConnected: () => true,
    close: async () => {},
  };
}

/** A kafkajs client whose producers acknowledge every batch at once without sending it. */
function withoutProduce(kafka) {
  const producer = kafka.producer.bind(kafka);
  kafka.producer = (options) => {
    const real = producer(options);
    real.sendBatch = async () => [];
    real.send = async () => [];
    return real;
  };
  return kafka;
}

bootstrap(
  {
    service: 'ingress',
    readConfig,
    logLevel: (config) => config.LOG_LEVEL,
    createService: (config, logger) => {
      const kafka = createKafka({
        brokers: config.KAFKA_BROKERS,
        clientId: 'ampflow-ingress-bench-variant',
        logger,
        requestTimeoutMs: 5_000,
      });
      return createIngressApp({
        settings: {
          httpPort: config.HTTP_PORT,
          httpHost: config.HTTP_HOST,
          smartcarManagementToken: config.SMARTCAR_MANAGEMENT_TOKEN,
          telematicaWebhookSecrets: config.TELEMATICA_WEBHOOK_SECRET,
          maxBodyBytes: config.MAX_BODY_BYTES,
          kafkaPublishTimeoutMs: config.KAFKA_PUBLISH_TIMEOUT_MS,
          rawTopicPartitions: config.RAW_TOPIC_PARTITIONS,
          shutdownDrainMs: config.SHUTDOWN_DRAIN_MS,
        },
        kafka: stubKafka ? withoutProduce(kafka) : kafka,
        seenStore: stubRedis
          ? createMemorySeenStore()
          : createRedisSeenStore({ url: config.REDIS_URL, ttlSeconds: config.DEDUP_TTL_SECONDS }),
        logger,
        registry: createMetricsRegistry('ingress'),
        onFatal: (error) => process.stderr.write(`ingress reported itself stuck: ${String(error)}\n`),
      });
    },
  },
  process,
  createLogger,
);
