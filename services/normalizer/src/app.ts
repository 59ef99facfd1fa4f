import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { IHeaders, Kafka } from 'kafkajs';
import {
  CANONICAL_SCHEMA_FILES,
  KNOWN_PROVIDER_EVENT_TYPES,
  RawHeaders,
  Topics,
  dlqTopic,
  type CanonicalTopic,
  type Provider,
} from '@ampflow/contracts';
import {
  createConsumerRunner,
  createReliableProducer,
  createWorkHealth,
  ensureTopics,
  registerCanonicalSchema,
  type ConsumedRecord,
  type OutputRecord,
} from '@ampflow/kafka';
import type { Logger, Registry } from '@ampflow/observability';
import { AppError, ValidationError, createOpsService, type Service } from '@ampflow/runtime';
import { mapRawEvent } from './mappers';
import { createNormalizerMetrics } from './metrics';

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
function header(headers: IHeaders | undefined, name: string): string | undefined {
  const value = headers?.[name];
  if (value === undefined) return undefined;
  return (Array.isArray(value) ? value[0] : value)?.toString();
}

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
  const schemaRegistry = new SchemaRegistry({ host: settings.schemaRegistryUrl });
  const schemaIds = new Map<CanonicalTopic, number>();
  const producer = createReliableProducer(deps.kafka, { logger });
  let stopping = false;
  /** The canonical topic a handled record went to, counted once its output is acknowledged. */
  const outputTopic = new WeakMap<object, string>();

  async function handle(record: ConsumedRecord): Promise<OutputRecord[]> {
    const started = process.hrtime.bigint();
    const { message } = record;
    const provider = header(message.headers, RawHeaders.provider) as Provider | undefined;
    const providerEventId = header(message.headers, RawHeaders.eventId);
    const eventType = header(message.headers, RawHeaders.eventType);
    const receivedAt = Date.parse(header(message.headers, RawHeaders.receivedAt) ?? '');
    metrics.recordsIn.inc({
      provider: provider === 'smartcar' || provider === 'telematica' ? provider : 'unknown',
      event_type: eventType && KNOWN_PROVIDER_EVENT_TYPES.has(eventType) ? eventType : 'unknown',
    });
    if (!provider || !providerEventId || !eventType || Number.isNaN(receivedAt)) {
      throw new ValidationError(
        'missing_headers',
        'the record lacks provider, event-id, event-type or received-at',
      );
    }
    let body: unknown;
    try {
      body = JSON.parse(message.value?.toString('utf8') ?? '');
    } catch {
      throw new ValidationError('bad_json', 'the record value is not JSON');
    }
    const mapped = mapRawEvent({ provider, providerEventId, eventType, receivedAt, body });
    if (mapped.failedSignals > 0)
      metrics.skippedSignals.inc({ provider, reason: 'failed' }, mapped.failedSignals);
    if (mapped.unknownSignals.length > 0) {
      metrics.skippedSignals.inc({ provider, reason: 'unknown_code' }, mapped.unknownSignals.length);
    }
    let value: Buffer;
    try {
      value = await schemaRegistry.encode(schemaIds.get(mapped.topic)!, mapped.value);
    } catch (err) {
      // The schema is cached since start; a value that does not fit it will never fit it.
      throw new ValidationError(
        'encode_failed',
        `the canonical record does not fit its Avro schema: ${(err as Error).message}`,
      );
    }
    metrics.mappingSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    outputTopic.set(message, topicName(mapped.topic));
    return [
      {
        topic: topicName(mapped.topic),
        message: {
          key: mapped.key,
          value,
          headers: {
            [RawHeaders.eventId]: (mapped.value as { eventId: string }).eventId,
            [RawHeaders.provider]: provider,
          },
        },
      },
    ];
  }

  const runner = createConsumerRunner({
    kafka: deps.kafka,
    groupId: settings.consumerGroupId,
    topics: rawTopics,
    handler: handle,
    producer,
    logger,
    initialRetryMs: settings.initialRetryMs,
    maxRetryMs: settings.maxRetryMs,
    sessionTimeoutMs: settings.sessionTimeoutMs,
    maxFailingMs: settings.stuckExitMs,
    onFatal: deps.onFatal,
    onRecordDone: (record, outcome, error) => {
      const topic = outputTopic.get(record.message);
      if (outcome === 'ok' && topic) metrics.recordsOut.inc({ topic });
      if (outcome === 'dead_lettered') {
        metrics.deadLetters.inc({
          source_topic: record.topic,
          reason: error instanceof AppError ? error.code : 'unexpected_error',
        });
      }
    },
    onBatchDone: ({ topic, partition, lag }) =>
      metrics.consumerLag.set({ topic, partition: String(partition) }, lag),
  });

  /** Registers every canonical schema, retrying while the registry is away; resolves once all ids are known. */
  async function registerSchemas(): Promise<void> {
    let delayMs = settings.initialRetryMs ?? 500;
    for (const topic of CANONICAL_TOPICS) {
      while (!schemaIds.has(topic)) {
        try {
          schemaIds.set(
            topic,
            await registerCanonicalSchema(
              schemaRegistry,
              settings.schemaRegistryUrl,
              topicName(topic),
              topic,
            ),
          );
        } catch (err) {
          if (!(err instanceof AppError) || stopping) throw err;
          logger.warn({ err, topic, delayMs }, 'schema registry not answering; retrying');
          await new Promise((resolve) => setTimeout(resolve, delayMs));
          delayMs = Math.min(delayMs * 2, settings.maxRetryMs ?? 10_000);
        }
      }
    }
    logger.info({ schemaIds: Object.fromEntries(schemaIds) }, 'canonical schemas registered');
  }

  const work = createWorkHealth({
    producer,
    runner,
    notReadyAfterMs: settings.notReadyAfterMs,
    fatalAfterMs: settings.stuckExitMs,
    onFatal: deps.onFatal,
  });
  const isReady = () => schemaIds.size === CANONICAL_TOPICS.length && work.ready();
  const service = createOpsService({
    name: 'normalizer',
    httpPort: settings.httpPort,
    shutdownDrainMs: settings.shutdownDrainMs,
    registry: deps.registry,
    logger,
    readiness: () => ({ schemas: schemaIds.size === CANONICAL_TOPICS.length, ...work.detail() }),
    start: async () => {
      await ensureTopics(deps.kafka, [
        ...CANONICAL_TOPICS.map((t) => ({
          topic: topicName(t),
          numPartitions: settings.canonicalTopicPartitions,
        })),
        // The ingress creates the raw topics too; whoever starts first does it.
        ...rawTopics.map((t) => ({ topic: t, numPartitions: settings.canonicalTopicPartitions })),
        ...rawTopics.map((t) => ({ topic: dlqTopic(t), numPartitions: 1 })),
      ]);
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
