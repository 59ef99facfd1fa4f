import type { Router } from 'express';
import type { Kafka } from 'kafkajs';
import { createAvroCodec, createRegistryClient } from '@ampflow/kafka';
import type { Logger, Registry } from '@ampflow/observability';
import { every, type Periodic } from '@ampflow/runtime';
import { createIndexFeeder } from './index-feeder';
import { createConsoleDataMetrics } from './metrics';
import { createNotifierClient } from './notifier-client';
import { createPipelineSampler } from './pipeline';
import { createDataRouter } from './router';
import { createSessionStore } from './sessions';
import { createTraceIndex } from './trace-index';
import { consoleTopics } from './topics';

/** Trace retention by default: 100,000 records, 24 hours (docs/console-data.md). */
export const DEFAULT_TRACE_RETENTION = { maxEvents: 100_000, maxAgeMs: 24 * 3_600_000 } as const;
/**
 * Estimated memory the trace index may hold (256 MiB), whatever the retention: at about 2.3 KB per record
 * (measured with Smartcar deliveries of 8 signals) 100,000 records fit; larger raw bodies make it drop the
 * oldest records sooner rather than grow.
 */
export const TRACE_INDEX_MAX_BYTES = 256 * 1024 * 1024;
/** The pipeline is sampled every 5 s and the last 120 samples (10 minutes) are kept. */
export const PIPELINE_INTERVAL_MS = 5_000;
export const PIPELINE_SAMPLES = 120;

export interface ConsoleDataOptions {
  kafka: Kafka;
  /** Confluent-compatible API base of the schema registry (SCHEMA_REGISTRY_URL). */
  schemaRegistryUrl: string;
  /** KAFKA_TOPIC_PREFIX, put before every topic name. */
  topicPrefix: string;
  /** The services' Prometheus endpoints, e.g. `{ service: 'normalizer', url: 'http://127.0.0.1:8081/metrics' }`. */
  metricsTargets: { service: string; url: string }[];
  /** The notifier's admin API: origin (without `/v1`) and NOTIFIER_ADMIN_TOKEN (never logged). */
  notifier: { baseUrl: string; adminToken: string };
  logger: Logger;
  registry: Registry;
  /** Bound of the trace index (default {@link DEFAULT_TRACE_RETENTION}). */
  traceRetention?: { maxEvents: number; maxAgeMs: number };
}

export interface ConsoleData {
  router: Router;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** True while the trace index consumer reads the platform's topics. */
  ready(): boolean;
}

/**
 * The console's operator data: the event trace, charging sessions and pipeline health, served by `router`
 * (JSON; mounted at `/api/ops`). No side effects until `start`, which reads the topics into memory and starts
 * sampling the pipeline; nothing is persisted, a restart rebuilds it all.
 */
export function createConsoleData(options: ConsoleDataOptions): ConsoleData {
  const retention = options.traceRetention ?? DEFAULT_TRACE_RETENTION;
  const logger = options.logger.child({ component: 'console-data' });
  const topics = consoleTopics(options.topicPrefix);
  // The gauges read the sizes when scraped, after the stores below exist.
  const metrics = createConsoleDataMetrics(options.registry, {
    traceRecords: () => index.size(),
    traceBytes: () => index.bytes(),
    sessions: () => sessions.size(),
  });
  const index = createTraceIndex({
    ...retention,
    maxBytes: TRACE_INDEX_MAX_BYTES,
    onEvict: (reason) => metrics.evictions.inc({ reason }),
  });
  const sessions = createSessionStore({
    maxSessions: retention.maxEvents,
    onEvict: () => metrics.evictions.inc({ reason: 'count' }),
  });

  let stopped = false;
  const codec = createAvroCodec({
    client: createRegistryClient(options.schemaRegistryUrl),
    logger,
    isStopped: () => stopped,
  });
  const feeder = createIndexFeeder({
    kafka: options.kafka,
    codec,
    topics,
    index,
    sessions,
    maxAgeMs: retention.maxAgeMs,
    logger,
    onRecord: (stream) => metrics.recordsRead.inc({ topic: stream }),
  });
  const admin = options.kafka.admin();
  const pipeline = createPipelineSampler({
    admin,
    topics,
    metricsTargets: options.metricsTargets,
    capacity: PIPELINE_SAMPLES,
    logger,
  });
  const notifier = createNotifierClient(options.notifier);
  let loops: Periodic[] = [];

  return {
    router: createDataRouter({
      index,
      sessions,
      notifier,
      pipeline,
      retention,
      pipelineIntervalMs: PIPELINE_INTERVAL_MS,
      telemetryStream: topics.streamOf(topics.telemetry)!,
      logger,
    }),
    async start() {
      stopped = false;
      await admin.connect();
      await feeder.start();
      await pipeline.sample();
      const onError = (err: unknown) => logger.warn({ err }, 'console data background task failed');
      loops = [
        every(PIPELINE_INTERVAL_MS, async () => void (await pipeline.sample()), { onError }),
        every(30_000, () => void index.evictExpired(Date.now()), { onError }),
      ];
    },
    async stop() {
      stopped = true;
      await Promise.all(loops.map((l) => l.stop()));
      loops = [];
      await feeder.stop();
      await admin.disconnect();
    },
    // Ready once it reads every watched topic that exists, or when none exists yet (nothing to read).
    ready: () => feeder.running() || feeder.waitingForTopics(),
  };
}
