import type { RedisClient as Redis } from '@ampflow/runtime/redis';
import type { Kafka } from 'kafkajs';
import { NotifierTopics, Topics, topicConfigEntries } from '@ampflow/contracts';
import {
  createAvroCodec,
  createConsumer,
  createRegistryClient,
  createReliableProducer,
  createWorkHealth,
  ensureTopics,
} from '@ampflow/kafka';
import type { Logger, Registry } from '@ampflow/observability';
import {
  createRetryPolicy,
  every,
  startHttpServer,
  type Periodic,
  type RunningHttpServer,
  type Service,
} from '@ampflow/runtime';
import { createHttpApp } from '@ampflow/runtime/http';
import { createAdminRouter } from './admin/admin-router';
import { createAttemptLog } from './delivery/attempt-log';
import { createDeliveryControl } from './delivery/control';
import { createDispatcher } from './delivery/dispatcher';
import { createDoneMarks, DONE_MARK_TTL_SECONDS } from './delivery/done-marks';
import { createDeadLetterLookup } from './delivery/dlq-lookup';
import { scanDeadLetters } from './delivery/dlq-scan';
import { createDurableWriter } from './delivery/durable-writer';
import { createHandover } from './delivery/handover';
import { createHttpSender } from './delivery/http-sender';
import { createOperationalEvents } from './delivery/operational';
import { RETRY_TIERS, retryTopic } from './delivery/retry-tiers';
import { createRetryReader } from './delivery/retry-reader';
import { retrySchedule } from './delivery/retry-schedule';
import { createAddressPolicy, type Resolver } from './delivery/ssrf-guard';
import { createSecretBox, type SecretsKey } from './endpoints/secret-box';
import { createEndpointStore } from './endpoints/store';
import { createUrlCheck } from './endpoints/url-check';
import { createFanoutHandler, type SourceTopics } from './fanout/fanout';
import { createHealthStore } from './health/health-store';
import { createMessageIndex } from './history/message-index';
import { createMessageLog } from './history/message-log';
import { createNotifierMetrics } from './metrics';

export interface NotifierSettings {
  httpPort: number;
  httpHost?: string;
  schemaRegistryUrl: string;
  adminToken: string;
  /** NOTIFIER_SECRETS_KEY and, during a rotation, NOTIFIER_SECRETS_KEY_PREVIOUS: endpoint secrets at rest. */
  secretsKeys: { current: SecretsKey; previous?: SecretsKey };
  shutdownDrainMs: number;
  groupId: string;
  /** Put before every topic name (KAFKA_TOPIC_PREFIX). */
  topicPrefix: string;
  redisNamespace: string;
  retryTopicPartitions: number;
  /** Partitions of the deliveries topic when created (NOTIFIER_DELIVERY_TOPIC_PARTITIONS, default 12). */
  deliveryTopicPartitions?: number;
  /**
   * How long a newly given deliveries partition waits before its deliveries are sent (NOTIFIER_HANDOVER_MS;
   * default `requestTimeoutMs` + 2 s): the previous owner's attempts in flight end first.
   */
  handoverMs?: number;
  /** Delays before attempts 2, 3, ... (the first is immediate when the schedule starts with 0). */
  retryScheduleMs: readonly number[];
  retryAfterMaxMs: number;
  /** Jitter ratio of the schedule (default 0.2); tests pass 0. */
  jitterRatio?: number;
  allowedNetworks: readonly string[];
  allowHttp: boolean;
  requestTimeoutMs: number;
  endpointConcurrency: number;
  maxQueuePerEndpoint: number;
  secretRotationOverlapMs: number;
  disableAfterFailingMs: number;
  circuitFailures: number;
  circuitCooldownMs: number;
  attemptRetentionMs: number;
  /** Vehicle attributes and plug states in Redis (default 90 days). */
  stateTtlSeconds?: number;
  notReadyAfterMs?: number;
  stuckExitMs?: number;
  sessionTimeoutMs?: number;
  /**
   * Retry-tier records per partition held or in progress before that partition stops fetching (default 2,000).
   * Source records are bounded more tightly (below), since each fans out to every subscribed endpoint.
   */
  maxOutstandingPerPartition?: number;
  /**
   * Source records per partition taken and not yet done (default 100, at most `maxOutstandingPerPartition`):
   * a record is done once its deliveries are in the deliveries topic, so this bounds the memory of a backlog's
   * fan-out, not the endpoints' queues (a deliveries partition holds at most `maxQueuePerEndpoint` records).
   */
  maxSourceOutstandingPerPartition?: number;
  /** Host name resolution of the SSRF guard (tests). */
  resolver?: Resolver;
}

export interface NotifierDeps {
  settings: NotifierSettings;
  kafka: Kafka;
  redis: Redis;
  logger: Logger;
  registry: Registry;
  /** Called when the notifier is stuck (no Kafka acknowledgement for 5 min); `main.ts` exits. */
  onFatal: (error: unknown) => void;
  now?: () => number;
}

export interface NotifierApp extends Service {
  port(): number;
  isReady(): boolean;
}

/** The endpoints table (compacted), before `KAFKA_TOPIC_PREFIX`. */
export const NOTIFIER_ENDPOINTS_TOPIC = 'ampflow.notifier.endpoints';

/** The source topics (the contract's, with the prefix). */
export function sourceTopics(prefix: string): SourceTopics {
  return {
    telemetry: prefix + Topics.vehicleTelemetry,
    sessions: prefix + Topics.chargingSessions,
    commands: prefix + Topics.commandResults,
    deviceLinks: prefix + Topics.deviceLinks,
    errors: prefix + Topics.vehicleErrors,
  };
}

/**
 * The notifier. One consumer group reads the canonical topics, the sessions, the retry tiers and the deliveries
 * topic. Source records fan out to one work item per subscribed endpoint, written to the deliveries topic keyed
 * by endpoint id (a retry that falls due is written there too), so that one partition, hence one instance at a
 * time, sends to each endpoint: its concurrency, throttle and circuit are the deployment's. The dispatcher
 * delivers each item read from there (signed, through the SSRF-guarded pool) and writes what follows (a retry to
 * its tier, a dead letter) to Kafka before the record's offset may be committed. Endpoints and their health live
 * in compacted topics; Redis holds only what may be lost (the vehicle directory, plug states, the attempt log).
 */
export function createNotifierApp(deps: NotifierDeps): NotifierApp {
  const { settings, logger, redis, registry } = deps;
  const now = deps.now ?? Date.now;
  const prefix = settings.topicPrefix;
  const topics = sourceTopics(prefix);
  const dlqTopic = prefix + Topics.webhookDeliveriesDlq;
  const endpointsTopic = prefix + NOTIFIER_ENDPOINTS_TOPIC;
  const deliveriesTopic = prefix + NotifierTopics.deliveries;
  const tierTopics = RETRY_TIERS.map((tier) => ({ tier, topic: retryTopic(prefix, tier) }));
  const metrics = createNotifierMetrics(registry);
  // Counted, not logged: ioredis reconnects by itself, and /readyz reports the connection.
  redis.on('error', () => metrics.redisErrors.inc({ operation: 'connection' }));
  const producer = createReliableProducer(deps.kafka, { logger });
  let stopping = false;
  const codec = createAvroCodec({
    client: createRegistryClient(settings.schemaRegistryUrl),
    logger,
    retryPolicy: createRetryPolicy({ baseDelayMs: 500, maxDelayMs: 10_000 }),
    isStopped: () => stopping,
  });
  const policy = createAddressPolicy(settings.allowedNetworks);
  const checkUrl = createUrlCheck({ policy, allowHttp: settings.allowHttp });
  const endpoints = createEndpointStore({
    kafka: deps.kafka,
    producer,
    topic: endpointsTopic,
    secretBox: createSecretBox(settings.secretsKeys),
    logger,
    onFatal: deps.onFatal,
    checkUrl,
  });
  const attemptLog = createAttemptLog(redis, {
    namespace: settings.redisNamespace,
    retentionMs: settings.attemptRetentionMs,
    logger,
  });
  // The attempt log with the message log's index and health counters written in its batches.
  const history = createMessageIndex(redis, attemptLog, {
    namespace: settings.redisNamespace,
    retentionMs: settings.attemptRetentionMs,
    now,
  });
  const sender = createHttpSender({
    timeoutMs: settings.requestTimeoutMs,
    allowHttp: settings.allowHttp,
    allowedNetworks: settings.allowedNetworks,
    resolver: settings.resolver,
    connections: Math.max(settings.endpointConcurrency, 10),
  });
  const writer = createDurableWriter({
    producer,
    topicPrefix: prefix,
    dlqTopic,
    deliveriesTopic,
    metrics,
    logger,
    now,
  });
  const health = createHealthStore({
    kafka: deps.kafka,
    producer,
    topic: prefix + NotifierTopics.endpointHealth,
    logger,
    onFatal: deps.onFatal,
  });
  const operational = createOperationalEvents({ endpoints, writer, now });
  const dispatcher = createDispatcher({
    settings: {
      schedule: retrySchedule({
        delaysMs: [...settings.retryScheduleMs],
        retryAfterMaxMs: settings.retryAfterMaxMs,
        ...(settings.jitterRatio !== undefined ? { jitterRatio: settings.jitterRatio } : {}),
      }),
      concurrency: settings.endpointConcurrency,
      maxQueuePerEndpoint: settings.maxQueuePerEndpoint,
      secretOverlapMs: settings.secretRotationOverlapMs,
      circuit: { failureThreshold: settings.circuitFailures, cooldownMs: settings.circuitCooldownMs },
      disableAfterFailingMs: settings.disableAfterFailingMs,
    },
    endpoints,
    sender,
    writer,
    attempts: history,
    operational,
    health,
    metrics,
    logger,
    now,
  });

  endpoints.onChange(({ id, before, after }) => {
    if (!endpoints.ready()) return; // the initial read: nothing changed
    if (!after || (before && ((after.enabled && !before.enabled) || after.url !== before.url))) {
      dispatcher.resetHealth(id);
    }
  });

  const deadLetterSource = writer.deadLetterSource;

  const marks = createDoneMarks(redis, {
    namespace: settings.redisNamespace,
    ttlSeconds: DONE_MARK_TTL_SECONDS,
    logger,
    // A delivery's done mark and its history (attempt, message log) in one round trip.
    carry: (pipeline) => history.carry(pipeline),
  });
  // Marks of records handed on to the deliveries topic (by the fan-out and the retry tiers): without the history,
  // which goes with the marks of deliveries sent (above), where the attempt is: one round trip for both.
  const publishedMarks = createDoneMarks(redis, {
    namespace: settings.redisNamespace,
    ttlSeconds: DONE_MARK_TTL_SECONDS,
    logger,
  });
  const fanout = createFanoutHandler({
    // A source record's deliveries are marked done once written to the deliveries topic (not sent again after a
    // crash re-reads the record); the deliveries reader marks them sent with marks of its own.
    marks: publishedMarks,
    codec,
    redis,
    namespace: settings.redisNamespace,
    stateTtlSeconds: settings.stateTtlSeconds ?? 90 * 24 * 3_600,
    topics,
    endpoints,
    // To the deliveries topic: only its reader sends.
    submit: (item, signal) => writer.publish(item, signal),
    deadLetterSource,
    saveMessages: (messages) => history.saveMessages(messages),
    metrics,
    logger,
    now,
  });
  // A retry that falls due goes to the deliveries topic (its endpoint's partition), not to the dispatcher here:
  // a tier partition holds many endpoints' deliveries, and sending from it would split an endpoint's traffic.
  const retryReader = createRetryReader({
    marks: publishedMarks,
    submit: (item, signal) => writer.publish(item, signal),
    deadLetterSource,
    logger,
    now,
  });
  const handover = createHandover({
    handoverMs: settings.handoverMs ?? settings.requestTimeoutMs + 2_000,
    // Known before any record of an assignment is handed out (the consumer describes the group at each join).
    soleMember: () => consumer.membersAtJoin() === 1,
    joinedAt: () => consumer.joinedAt(),
    now,
  });
  const deliveriesReader = createRetryReader({
    marks,
    submit: (item, signal) => dispatcher.submit(item, signal),
    notBefore: (signal, recordTimestampMs) => handover.notBefore(signal, recordTimestampMs),
    // Not the tier record's mark (that one means "written to the deliveries topic"): sent, or handed on.
    markKeyOf: (doneMarks, item) => `${doneMarks.keyOf(item, 'tier')}:sent`,
    // Only a record written before this instance got the partition may have been read (and sent) before.
    mayBeReadBefore: (timestampMs, signal) => handover.mayBeReadBefore(timestampMs, signal),
    deadLetterSource,
    logger,
    now,
  });
  const tierLimit = settings.maxOutstandingPerPartition ?? 2_000;
  const sourceLimit = settings.maxSourceOutstandingPerPartition ?? Math.min(100, tierLimit);
  // A deliveries partition's backlog fits the endpoints' queues (else it would move to the 1 s tier and back).
  const deliveriesLimit = Math.min(tierLimit, settings.maxQueuePerEndpoint);
  const tierOfTopic = new Map(tierTopics.map(({ tier, topic }) => [topic, tier.label]));
  const sourceTopicSet = new Set(Object.values(topics));
  // Records are taken in partition order (plug changes are decided in order) and finish in any order.
  const consumer = createConsumer({
    kafka: deps.kafka,
    groupId: settings.groupId,
    topics: [...Object.values(topics), ...tierTopics.map((t) => t.topic), deliveriesTopic],
    ordering: 'unordered',
    describeGroupOnJoin: true,
    handler: {
      take: (records, signal) => {
        const topic = records[0]!.topic;
        if (sourceTopicSet.has(topic)) return fanout(records, signal);
        return topic === deliveriesTopic ? deliveriesReader(records, signal) : retryReader(records, signal);
      },
    },
    logger,
    sessionTimeoutMs: settings.sessionTimeoutMs,
    maxInFlightPerPartition: (topic) =>
      sourceTopicSet.has(topic) ? sourceLimit : topic === deliveriesTopic ? deliveriesLimit : tierLimit,
    // A source record held (fetched, not fanned out yet) is only its bytes, so a source partition holds ten times
    // what it fans out at once: it resumes fetching with 500 held, seconds of work at any rate one partition sees,
    // so the next fetch arrives before they run out (kafkajs adds a resumed partition to the fetch after the one in
    // flight, which waits up to `maxWaitTimeMs` when every other partition is idle).
    maxHeldPerPartition: (topic) =>
      sourceTopicSet.has(topic) ? 10 * sourceLimit : topic === deliveriesTopic ? deliveriesLimit : tierLimit,
    // How often an idle notifier asks for records (a record is fetched as soon as it is appended either way).
    maxWaitTimeMs: 1_000,
    maxFailingMs: settings.stuckExitMs,
    onFatal: deps.onFatal,
    onBatchDone: ({ topic, partition, lag: pending }) => {
      if (topic === deliveriesTopic)
        return metrics.deliveryLag.set({ partition: String(partition) }, pending);
      const tier = tierOfTopic.get(topic);
      if (tier) pendingByTier.set(`${tier}:${partition}`, pending);
      else metrics.sourceLag.set({ topic, partition: String(partition) }, pending);
    },
  });
  const pendingByTier = new Map<string, number>();
  const deadLetters = createDeadLetterLookup({
    kafka: deps.kafka,
    topic: dlqTopic,
    logger,
    onFatal: deps.onFatal,
  });
  const control = createDeliveryControl({
    // A re-send by an operator: the delivery is pending again in the message log (marked before the re-send
    // is written, so that its first attempt, recorded after, is what the log keeps).
    history,
    endpoints,
    writer,
    scan: (sinceMs, keep) => scanDeadLetters({ kafka: deps.kafka, topic: dlqTopic, sinceMs, keep, logger }),
    findDeadLetters: (messageId, endpointId) => deadLetters.find(messageId, endpointId),
    now,
  });
  const work = createWorkHealth({
    producer,
    runner: consumer,
    notReadyAfterMs: settings.notReadyAfterMs,
    fatalAfterMs: settings.stuckExitMs,
    onFatal: deps.onFatal,
  });
  const isReady = () => endpoints.ready() && health.ready() && redis.status === 'ready' && work.ready();
  const app = createHttpApp({
    logger,
    registry,
    readiness: () => ({
      endpoints: endpoints.ready(),
      endpointHealth: health.ready(),
      redis: redis.status === 'ready',
      ...work.detail(),
    }),
    routes: (express) => {
      express.use(
        '/v1',
        createAdminRouter({
          token: settings.adminToken,
          endpoints,
          delivery: control,
          messages: createMessageLog({
            index: history,
            circuitOf: (endpointId) => dispatcher.circuitOf(endpointId),
            writer,
            retryMessage: (messageId, endpointId) => control.retryMessage(messageId, endpointId),
            now,
          }),
          now,
          checkUrl,
          logger,
        }),
      );
    },
  });
  let server: RunningHttpServer | undefined;
  let gauges: Periodic | undefined;

  const refreshGauges = () => {
    let enabled = 0;
    let disabled = 0;
    for (const endpoint of endpoints.list()) {
      if (endpoint.enabled) enabled += 1;
      else disabled += 1;
    }
    metrics.endpoints.set({ state: 'enabled' }, enabled);
    metrics.endpoints.set({ state: 'disabled' }, disabled);
    metrics.openCircuits.set(dispatcher.openCircuits());
    const byTier = new Map<string, number>();
    for (const [key, pending] of pendingByTier) {
      const tier = key.slice(0, key.indexOf(':'));
      byTier.set(tier, (byTier.get(tier) ?? 0) + pending);
    }
    for (const { tier } of tierTopics)
      metrics.pendingRetries.set({ tier: tier.label }, byTier.get(tier.label) ?? 0);
  };

  return {
    port: () => server?.port ?? settings.httpPort,
    isReady,
    async start() {
      await redis.connect();
      await ensureTopics(
        deps.kafka,
        [
          ...tierTopics.map(({ topic }) => ({
            topic,
            numPartitions: settings.retryTopicPartitions,
            configEntries: topicConfigEntries('notifierRetry'),
          })),
          { topic: dlqTopic, numPartitions: 1, configEntries: topicConfigEntries('webhookDeliveriesDlq') },
          {
            topic: deliveriesTopic,
            numPartitions: settings.deliveryTopicPartitions ?? 12,
            configEntries: topicConfigEntries('notifierDeliveries'),
          },
          ...Object.values(topics).map((topic) => ({
            topic,
            numPartitions: 6,
            configEntries: topicConfigEntries('canonical'),
          })),
        ],
        { logger },
      );
      await producer.connect();
      // Builds its index while the rest starts; deliveries do not wait for it (only a retry by message id does).
      const deadLettersStarted = deadLetters.start();
      deadLettersStarted.catch(() => undefined); // awaited below; a failure before that must not go unhandled
      await endpoints.start();
      await health.start();
      // Deliveries start once every endpoint is known (a record read before would miss its subscribers) and
      // every endpoint's health (a circuit opened by another instance, the failing-since clock).
      while (!endpoints.ready() || !health.ready()) await new Promise((resolve) => setTimeout(resolve, 100));
      server = await startHttpServer(app, { port: settings.httpPort, host: settings.httpHost ?? '0.0.0.0' });
      await consumer.start();
      await deadLettersStarted;
      work.start();
      gauges = every(5_000, async () => refreshGauges(), {
        onError: (err) => logger.warn({ err }, 'gauge refresh failed'),
      });
      refreshGauges();
      logger.info({ port: server.port }, 'notifier listening');
    },
    async stop() {
      stopping = true;
      work.stop();
      await gauges?.stop();
      await server?.close(settings.shutdownDrainMs);
      await deadLetters.stop();
      await consumer.stop(settings.shutdownDrainMs);
      await dispatcher.drain();
      await health.stop();
      await publishedMarks.stop();
      await marks.stop();
      await attemptLog.stop();
      await sender.close();
      await endpoints.stop();
      await producer.disconnect(settings.shutdownDrainMs);
      await redis.quit();
    },
  };
}
