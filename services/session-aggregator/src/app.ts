import type { RedisClient } from '@ampflow/runtime/redis';
import type { Kafka } from 'kafkajs';
import { Topics, dlqTopic, topicConfigEntries } from '@ampflow/contracts';
import {
  createAvroCodec,
  createConsumerRunner,
  createRegistryClient,
  createReliableProducer,
  createWorkHealth,
  ensureTopics,
  isDeadLetter,
} from '@ampflow/kafka';
import type { Logger, Registry } from '@ampflow/observability';
import {
  AppError,
  DependencyError,
  createOpsService,
  createRetryPolicy,
  every,
  type Periodic,
  type Service,
} from '@ampflow/runtime';
import { createAggregatorMetrics } from './metrics';
import { createRedisSessionStore, type SessionStore } from './redis-session-store';
import { createSessionChunkHandler } from './session-chunk';
import { createStateCache } from './state-cache';
import type { ReducerSettings } from './session-reducer';
import { changelogTopicOf } from './state-changelog';
import { createStateRestorer, ensureChangelogTopic } from './state-restore';
import { createSweeper } from './sweeper';

export interface AggregatorSettings extends ReducerSettings {
  httpPort: number;
  schemaRegistryUrl: string;
  shutdownDrainMs: number;
  consumerGroupId: string;
  sessionsTopicPartitions: number;
  sweepIntervalMs: number;
  stateTtlSeconds: number;
  /** Redis key prefix (default `ampflow:sessions`); tests give each run its own. */
  redisNamespace?: string;
  /** Input and output topics (the contract's unless a test gives its own). */
  telemetryTopic?: string;
  sessionsTopic?: string;
  /**
   * Compacted topic of every vehicle's latest state and deadline (default `<consumerGroupId>-state-changelog`);
   * Redis is refilled from it when found empty. Instances of one consumer group share it, as they share the
   * Redis namespace.
   */
  changelogTopic?: string;
  /** A restore of Redis from the changelog that takes longer fails and is tried again (default 10 min). */
  restoreTimeoutMs?: number;
  initialRetryMs?: number;
  maxRetryMs?: number;
  sessionTimeoutMs?: number;
  /** Not ready after this long without progress; restart (`onFatal`) after `stuckExitMs` (defaults 30 s, 5 min). */
  notReadyAfterMs?: number;
  stuckExitMs?: number;
  /** How long the sweeper waits for Kafka to acknowledge one timed-out session (default 10 s). */
  sweepSendTimeoutMs?: number;
  /**
   * Vehicles whose last saved state is kept in memory and used instead of a Redis load while nobody else can
   * have written it (`state-cache.ts`; default 20,000; 0 loads every chunk's states).
   */
  stateCacheEntries?: number;
}

export interface AggregatorDeps {
  settings: AggregatorSettings;
  kafka: Kafka;
  redis: RedisClient;
  logger: Logger;
  registry: Registry;
  /** Called when the service is stuck in a state it cannot leave; `main.ts` exits so a supervisor restarts it. */
  onFatal: (error: unknown) => void;
  /** Wall clock, for timeout deadlines (tests move it). */
  now?: () => number;
}

/**
 * The session aggregator: reads `ev.vehicle-telemetry.v1`, applies each reading to its vehicle's state in
 * Redis with the pure reducer, and produces STARTED / UPDATED / ENDED records to `ev.charging-sessions.v1`.
 * Per chunk: load states (or take this instance's last saved ones), reduce, produce the changes, then (once
 * acknowledged) the new states to the changelog topic, and only after Kafka acknowledged those write the states
 * to Redis (compare-and-set) and commit the offsets.
 * A sweeper ends sessions whose inactivity deadline passed. Redis is a cache: found empty, it is refilled from
 * the changelog before any reading is applied.
 */
export function createAggregatorApp(
  deps: AggregatorDeps,
): Service & { port(): number; isReady(): boolean; sweep(): Promise<number> } {
  const { settings, logger, redis } = deps;
  const now = deps.now ?? Date.now;
  const sweepSendTimeoutMs = settings.sweepSendTimeoutMs ?? 10_000;
  const telemetryTopic = settings.telemetryTopic ?? Topics.vehicleTelemetry;
  const sessionsTopic = settings.sessionsTopic ?? Topics.chargingSessions;
  const changelogTopic = settings.changelogTopic ?? changelogTopicOf(settings.consumerGroupId);
  const store = createRedisSessionStore(redis, {
    namespace: settings.redisNamespace ?? 'ampflow:sessions',
    stateTtlSeconds: settings.stateTtlSeconds,
  });
  const metrics = createAggregatorMetrics(deps.registry, () => store.openSessions());
  // Counted, not logged: ioredis reconnects by itself, and /readyz reports the connection.
  redis.on('error', () => metrics.redisErrors.inc({ operation: 'connection' }));
  const restorer = createStateRestorer({
    kafka: deps.kafka,
    store,
    changelogTopic,
    groupIdPrefix: settings.consumerGroupId,
    logger,
    now,
    stateTtlSeconds: settings.stateTtlSeconds,
    restoreTimeoutMs: settings.restoreTimeoutMs,
    onRestored: ({ vehicles, seconds }) => {
      metrics.restores.inc({ outcome: 'completed' });
      metrics.restoreSeconds.observe(seconds);
      metrics.restoredVehicles.set(vehicles);
    },
    onFailed: () => metrics.restores.inc({ outcome: 'failed' }),
  });
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
  const topics = { sessions: sessionsTopic, changelog: changelogTopic };
  let sweeps: Periodic | undefined;

  /** Redis was emptied: start the restore and fail this chunk or sweep, to be retried on a restored Redis. */
  function stateReset(where: 'load' | 'save'): DependencyError {
    metrics.stateResets.inc({ at: where });
    restorer.trigger();
    return new DependencyError(
      'state_reset',
      'Redis lost the session state (no restore marker); retrying once it is restored from the changelog',
    );
  }

  const timed = async <T>(operation: string, fn: () => Promise<T>): Promise<T> => {
    const end = metrics.redisSeconds.startTimer({ operation });
    try {
      return await fn();
    } catch (err) {
      metrics.redisErrors.inc({ operation });
      throw new DependencyError('redis_unavailable', `Redis ${operation} failed`, { cause: err });
    } finally {
      end();
    }
  };
  const timedStore: Pick<SessionStore, 'load' | 'save'> = {
    load: (vehicleIds) => timed('load', () => store.load(vehicleIds)),
    save: (epoch, writes) => timed('save', () => store.save(epoch, writes)),
  };

  const sweeper = createSweeper({
    store,
    producer,
    codec,
    settings,
    topics,
    now,
    metrics,
    logger,
    isRestoring: () => restorer.isRestoring(),
    stateReset,
    sendTimeoutMs: sweepSendTimeoutMs,
  });

  const runner = createConsumerRunner({
    kafka: deps.kafka,
    groupId: settings.consumerGroupId,
    topics: [telemetryTopic],
    handler: {
      perChunk: createSessionChunkHandler({
        codec,
        store: timedStore,
        producer,
        settings,
        topics,
        now,
        metrics,
        stateReset,
        cache: createStateCache({
          maxEntries: settings.stateCacheEntries ?? 20_000,
          maxAgeMs: 10 * 60_000,
          deadlineMarginMs: 60_000,
        }),
      }),
    },
    producer,
    logger,
    initialRetryMs: settings.initialRetryMs,
    maxRetryMs: settings.maxRetryMs,
    sessionTimeoutMs: settings.sessionTimeoutMs,
    maxFailingMs: settings.stuckExitMs,
    onFatal: deps.onFatal,
    onRecordDone: (_record, outcome) => {
      if (!isDeadLetter(outcome)) return;
      const error = outcome.deadLetter;
      metrics.deadLetters.inc({ reason: error instanceof AppError ? error.code : 'unexpected_error' });
    },
    onBatchDone: ({ topic, partition, lag }) =>
      metrics.consumerLag.set({ topic, partition: String(partition) }, lag),
  });

  const work = createWorkHealth({
    producer,
    runner,
    notReadyAfterMs: settings.notReadyAfterMs,
    fatalAfterMs: settings.stuckExitMs,
    onFatal: deps.onFatal,
  });
  const isReady = () =>
    codec.schemaId(sessionsTopic) !== undefined &&
    redis.status === 'ready' &&
    !restorer.isRestoring() &&
    work.ready();
  const service = createOpsService({
    name: 'session aggregator',
    httpPort: settings.httpPort,
    shutdownDrainMs: settings.shutdownDrainMs,
    registry: deps.registry,
    logger,
    readiness: () => ({
      schema: codec.schemaId(sessionsTopic) !== undefined,
      state: !restorer.isRestoring(),
      redis: redis.status === 'ready',
      ...work.detail(),
    }),
    start: async () => {
      await redis.connect();
      await ensureTopics(
        deps.kafka,
        [
          {
            topic: telemetryTopic,
            numPartitions: settings.sessionsTopicPartitions,
            configEntries: topicConfigEntries('canonical'),
          },
          {
            topic: sessionsTopic,
            numPartitions: settings.sessionsTopicPartitions,
            configEntries: topicConfigEntries('canonical'),
          },
          {
            topic: dlqTopic(telemetryTopic),
            numPartitions: 1,
            configEntries: topicConfigEntries('deadLetter'),
          },
        ],
        { logger },
      );
      await ensureChangelogTopic(deps.kafka, { telemetryTopic, changelogTopic }, logger);
      await codec.register(sessionsTopic, Topics.chargingSessions);
      await producer.connect();
      // Before the first chunk: a Redis that came back empty is refilled now rather than by failing chunks.
      await restorer.ensureRestored();
      await runner.start();
      work.start();
      sweeps = every(settings.sweepIntervalMs, (signal) => sweeper.sweep(signal).then(() => undefined), {
        onError: (err) => logger.warn({ err }, 'timeout sweep failed; retrying at the next interval'),
      });
    },
    stop: async () => {
      stopping = true;
      work.stop();
      await sweeps?.stop();
      await runner.stop();
      await producer.disconnect(settings.shutdownDrainMs);
      await redis.quit();
    },
  });
  return { ...service, isReady, sweep: () => sweeper.sweep() };
}
