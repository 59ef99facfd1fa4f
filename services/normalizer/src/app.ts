import type { Kafka } from 'kafkajs';
import {
  CANONICAL_SCHEMA_FILES,
  Topics,
  dlqTopic,
  topicConfigEntries,
  type CanonicalTopic,
} from '@ampflow/contracts';
import {
  createAvroCodec,
  createConsumer,
  createRegistryClient,
  createReliableProducer,
  createWorkHealth,
  ensureTopics,
  isDeadLetter,
  type ConsumerOptions,
} from '@ampflow/kafka';
import type { Logger, Registry } from '@ampflow/observability';
import { AppError, createOpsService, createRetryPolicy, type Service } from '@ampflow/runtime';
import { createNormalizerMetrics } from './metrics';
import { createRecordNormalizer } from './normalize-record';

export interface NormalizerSettings {
  httpPort: number;
  schemaRegistryUrl: string;
  shutdownDrainMs: number;
  consumerGroupId: string;
  canonicalTopicPartitions: number;
  /** Raw topics to consume (the contract's two unless a test gives its own). */
  rawTopics?: string[];
  /** Name of the topic each canonical stream goes to (the contract's names unless a test gives its own). */
  canonicalTopicName?: (topic: CanonicalTopic) => string;
  /** Backoff bounds of retried failures (registry or broker away). */
  initialRetryMs?: number;
  maxRetryMs?: number;
  /** Consumer group session timeout (default 10 s). */
  sessionTimeoutMs?: number;
  /** Not ready after this long without progress; restart (`onFatal`) after `stuckExitMs` (defaults 30 s, 5 min). */
  notReadyAfterMs?: number;
  stuckExitMs?: number;
  /** Fetch and commit settings of the consumer (the consumer's defaults unless given; measurements vary them). */
  consumer?: Pick<ConsumerOptions, 'minBytes' | 'maxWaitTimeMs' | 'commitIntervalMs' | 'commitAfterRecords'>;
}

export interface NormalizerDeps {
  settings: NormalizerSettings;
  kafka: Kafka;
  logger: Logger;
  registry: Registry;
  /** Called when the service is stuck in a state it cannot leave; `main.ts` exits so a supervisor restarts it. */
  onFatal: (error: unknown) => void;
}

const CANONICAL_TOPICS = Object.keys(CANONICAL_SCHEMA_FILES) as CanonicalTopic[];

/**
 * The normalizer: consumes the raw topics, maps each provider event to its canonical record, encodes it
 * with the registered Avro schema (Confluent wire format) and produces it keyed by the canonical id.
 * Offsets are committed only after the outputs are acknowledged; unmappable records go to `<raw topic>.dlq`.
 */
export function createNormalizerApp(deps: NormalizerDeps): Service & { port(): number; isReady(): boolean } {
  const { settings, logger } = deps;
  const metrics = createNormalizerMetrics(deps.registry);
  const rawTopics = settings.rawTopics ?? [Topics.rawSmartcar, Topics.rawTelematica];
  const topicName = settings.canonicalTopicName ?? ((t: CanonicalTopic) => t);
  const producer = createReliableProducer(deps.kafka, { logger });
  let stopping = false;
  const codec = createAvroCodec({
    client: createRegistryClient(settings.schemaRegistryUrl),
    logger,
    retryPolicy: createRetryPolicy({
      baseDelayMs: settings.initialRetryMs ?? 500,
      maxDelayMs: settings.maxRetryMs ?? 10_000,
    }),
    isStopped: () => stopping,
  });
  const schemasRegistered = () => CANONICAL_TOPICS.every((t) => codec.schemaId(topicName(t)) !== undefined);

  // Stateless per record: order matters per key only (the canonical key is derived from the raw one), so a
  // chunk is mapped while the previous one's outputs wait for their acknowledgement.
  const runner = createConsumer({
    kafka: deps.kafka,
    groupId: settings.consumerGroupId,
    topics: rawTopics,
    ordering: 'key',
    handler: { perRecord: createRecordNormalizer({ codec, metrics, topicName }) },
    producer,
    ...settings.consumer,
    logger,
    initialRetryMs: settings.initialRetryMs,
    maxRetryMs: settings.maxRetryMs,
    sessionTimeoutMs: settings.sessionTimeoutMs,
    maxFailingMs: settings.stuckExitMs,
    onFatal: deps.onFatal,
    onRecordDone: (record, outcome) => {
      if (!isDeadLetter(outcome)) {
        for (const { topic } of outcome.outputs) metrics.countOut(topic);
        return;
      }
      const error = outcome.deadLetter;
      metrics.deadLetters.inc({
        source_topic: record.topic,
        reason: error instanceof AppError ? error.code : 'unexpected_error',
      });
    },
    onBatchDone: ({ topic, partition, lag }) =>
      metrics.consumerLag.set({ topic, partition: String(partition) }, lag),
  });

  /** Registers every canonical schema (the codec retries while the registry is away). */
  async function registerSchemas(): Promise<void> {
    const ids: Record<string, number> = {};
    for (const topic of CANONICAL_TOPICS) ids[topic] = await codec.register(topicName(topic), topic);
    logger.info({ schemaIds: ids }, 'canonical schemas registered');
  }

  const work = createWorkHealth({
    producer,
    runner,
    notReadyAfterMs: settings.notReadyAfterMs,
    fatalAfterMs: settings.stuckExitMs,
    onFatal: deps.onFatal,
  });
  const isReady = () => schemasRegistered() && work.ready();
  const service = createOpsService({
    name: 'normalizer',
    httpPort: settings.httpPort,
    shutdownDrainMs: settings.shutdownDrainMs,
    registry: deps.registry,
    logger,
    readiness: () => ({ schemas: schemasRegistered(), ...work.detail() }),
    start: async () => {
      await ensureTopics(
        deps.kafka,
        [
          ...CANONICAL_TOPICS.map((t) => ({
            topic: topicName(t),
            numPartitions: settings.canonicalTopicPartitions,
            configEntries: topicConfigEntries('canonical'),
          })),
          // The ingress creates the raw topics too; whoever starts first does it. Their configs are the
          // ingress's (RAW_RETENTION_MS), so an existing one is left as it is.
          ...rawTopics.map((t) => ({
            topic: t,
            numPartitions: settings.canonicalTopicPartitions,
            configEntries: topicConfigEntries('raw'),
            correctExisting: false,
          })),
          ...rawTopics.map((t) => ({
            topic: dlqTopic(t),
            numPartitions: 1,
            configEntries: topicConfigEntries('deadLetter'),
          })),
        ],
        { logger },
      );
      await registerSchemas();
      await producer.connect();
      await runner.start();
      work.start();
    },
    stop: async () => {
      stopping = true;
      work.stop();
      await runner.stop();
      await producer.disconnect(settings.shutdownDrainMs);
    },
  });
  return { ...service, isReady };
}
