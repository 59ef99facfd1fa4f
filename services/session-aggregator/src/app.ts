import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type Redis from 'ioredis';
import type { Kafka } from 'kafkajs';
import { Topics, dlqTopic, type ChargingSession, type VehicleTelemetry } from '@ampflow/contracts';
import {
  createConsumerRunner,
  createReliableProducer,
  createWorkHealth,
  withTimeout,
  ensureTopics,
  registerCanonicalSchema,
  type ChunkHandler,
  type OutputRecord,
} from '@ampflow/kafka';
import type { Logger, Registry } from '@ampflow/observability';
import { AppError, DependencyError, ValidationError, createOpsService, type Service } from '@ampflow/runtime';
import { createAggregatorMetrics } from './metrics';
import { createRedisSessionStore, type StateWrite } from './redis-session-store';
import { changelogTopicOf, encodeChangelogValue } from './state-changelog';
import { createStateRestorer, ensureChangelogTopic } from './state-restore';
import {
  expire,
  initialState,
  reduce,
  type ReducerSettings,
  type VehicleSessionState,
} from './session-reducer';

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
}

export interface AggregatorDeps {
  settings: AggregatorSettings;
  kafka: Kafka;
  redis: Redis;
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
 * Per chunk: load states, reduce, produce the changes together with the new states to the changelog topic,
 * and only after Kafka acknowledged them write the states to Redis (compare-and-set) and commit the offsets.
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
  const schemaRegistry = new SchemaRegistry({ host: settings.schemaRegistryUrl });
  const producer = createReliableProducer(deps.kafka, { logger });
  let sessionSchemaId: number | undefined;
  let sweeper: NodeJS.Timeout | undefined;
  let sweeping: Promise<number> | undefined;

  const timed = async <T>(operation: string, fn: () => Promise<T>): Promise<T> => {
    const end = metrics.redisSeconds.startTimer({ operation });
    try {
      return await fn();
    } catch (err) {
      throw new DependencyError('redis_unavailable', `Redis ${operation} failed`, { cause: err });
    } finally {
      end();
    }
  };

  async function toOutput(change: ChargingSession): Promise<OutputRecord> {
    return {
      topic: sessionsTopic,
      message: {
        key: change.vehicleId,
        value: await schemaRegistry.encode(sessionSchemaId!, change),
        headers: { 'event-id': `${change.sessionId}:${change.version}`, provider: change.provider },
      },
    };
  }

  /** The vehicle's new state as the changelog keeps it, produced with the session changes. */
  function changelogOutput(write: StateWrite): OutputRecord {
    const entry = {
      vehicleId: write.vehicleId,
      rev: write.expectedRev + 1,
      state: write.state,
      deadline: write.deadline,
      writtenAt: now(),
    };
    return { topic: changelogTopic, message: { key: write.vehicleId, value: encodeChangelogValue(entry) } };
  }

  /** Redis was emptied: start the restore and fail this chunk or sweep, to be retried on a restored Redis. */
  function stateReset(where: 'load' | 'save'): DependencyError {
    metrics.stateResets.inc({ at: where });
    restorer.trigger();
    return new DependencyError(
      'state_reset',
      'Redis lost the session state (no restore marker); retrying once it is restored from the changelog',
    );
  }

  function count(changes: ChargingSession[]) {
    for (const c of changes) {
      if (c.change === 'STARTED') metrics.started.inc();
      if (c.change === 'ENDED') metrics.ended.inc({ reason: c.endReason ?? 'UNKNOWN' });
    }
  }

  /**
   * Confluent wire format: magic byte 0, schema id, Avro body. A record that is not that, or whose schema id
   * the registry does not know, can never be read (dead letter); a registry that does not answer is retried.
   */
  async function decodeTelemetry(value: Buffer | null): Promise<VehicleTelemetry> {
    if (!value || value.length < 5 || value.readUInt8(0) !== 0) {
      throw new ValidationError('bad_avro', 'the record is not in Confluent wire format');
    }
    let schema: { fromBuffer(buffer: Buffer): unknown };
    try {
      schema = (await schemaRegistry.getSchema(value.readInt32BE(1))) as typeof schema;
    } catch (err) {
      if ((err as { status?: number }).status === 404) {
        throw new ValidationError(
          'unknown_schema',
          `schema id ${value.readInt32BE(1)} is not in the registry`,
        );
      }
      throw new DependencyError('registry_unavailable', 'the schema registry did not answer', { cause: err });
    }
    try {
      return schema.fromBuffer(value.subarray(5)) as VehicleTelemetry;
    } catch (err) {
      throw new ValidationError('bad_avro', `the Avro body cannot be read: ${(err as Error).message}`);
    }
  }

  const deadlineOf = (state: VehicleSessionState) =>
    state.session ? now() + settings.inactivityTimeoutMs : null;

  const handleChunk: ChunkHandler = async (records) => {
    const deadLetters: Array<{ index: number; error: unknown }> = [];
    const byVehicle = new Map<string, VehicleTelemetry[]>();
    for (const [index, record] of records.entries()) {
      let reading: VehicleTelemetry;
      try {
        reading = await decodeTelemetry(record.message.value);
      } catch (error) {
        if (error instanceof AppError && !error.retriable) {
          deadLetters.push({ index, error });
          continue;
        }
        throw error;
      }
      const list = byVehicle.get(reading.vehicleId);
      if (list) list.push(reading);
      else byVehicle.set(reading.vehicleId, [reading]);
    }
    const { epoch, states: stored } = await timed('load', () => store.load([...byVehicle.keys()]));
    // Never reduce on top of an emptied Redis: every vehicle would look new (second STARTED, lost figures).
    if (epoch === null) throw stateReset('load');
    const changes: ChargingSession[] = [];
    const writes: StateWrite[] = [];
    for (const [vehicleId, readings] of byVehicle) {
      const before = stored.get(vehicleId);
      let state = before?.state ?? initialState(readings[0]!);
      let touched = false;
      for (const reading of readings) {
        const result = reduce(state, reading, settings);
        metrics.readings.inc({ outcome: result.outcome });
        if (result.outcome !== 'duplicate') touched = true;
        state = result.state;
        changes.push(...result.changes);
      }
      if (touched)
        writes.push({ vehicleId, expectedRev: before?.rev ?? 0, state, deadline: deadlineOf(state) });
    }
    return {
      // One produce call for both: the new states are durable before Redis has them or offsets move on.
      outputs: [...(await Promise.all(changes.map(toOutput))), ...writes.map(changelogOutput)],
      deadLetters,
      afterSend: async () => {
        const { lost, reset } = await timed('save', () => store.save(epoch, writes));
        if (reset) throw stateReset('save');
        if (lost.length > 0) {
          // Another writer (the sweeper, or an instance that held the partition) changed these vehicles.
          throw new DependencyError(
            'state_conflict',
            `state of ${lost.length} vehicles changed concurrently`,
          );
        }
        count(changes);
      },
    };
  };

  /** Ends sessions whose deadline passed without a reading; returns how many it ended. */
  async function sweep(): Promise<number> {
    let ended = 0;
    // An emptied Redis has no deadlines to find: restore it first (the next sweep finds them again).
    if (restorer.isRestoring()) return 0;
    const epoch = await store.epoch();
    if (epoch === null) {
      stateReset('load');
      return 0;
    }
    const due = await store.due(now(), 100);
    for (const { vehicleId } of due) {
      if (!(await store.claim(vehicleId, 30_000))) continue;
      try {
        const loaded = await store.load([vehicleId]);
        if (loaded.epoch !== epoch) {
          if (loaded.epoch === null) stateReset('load');
          break;
        }
        const stored = loaded.states.get(vehicleId);
        if (!stored) continue;
        // The wall-clock deadline passed with no reading: end the session whatever the provider clock says.
        const { state, changes } = expire(stored.state, Number.MAX_SAFE_INTEGER, settings);
        const write = { vehicleId, expectedRev: stored.rev, state, deadline: deadlineOf(state) };
        const ending = (await Promise.all(changes.map(toOutput))).map((o) => o.message);
        // Concurrent sends share one produce request; both are acknowledged before Redis is written.
        // Bounded, so that a stop while Kafka is away is not held up by the sweep.
        await withTimeout(
          Promise.all([
            producer.send(changelogTopic, [changelogOutput(write).message]),
            ending.length > 0 ? producer.send(sessionsTopic, ending) : undefined,
          ]),
          sweepSendTimeoutMs,
          'kafka_timeout',
          'Kafka did not acknowledge the timed-out session',
        );
        const { lost, reset } = await store.save(epoch, [write]);
        if (reset) {
          stateReset('save');
          break;
        }
        if (lost.length === 0) {
          count(changes);
          ended += changes.length;
        }
      } finally {
        await store.release(vehicleId);
      }
    }
    return ended;
  }

  const runner = createConsumerRunner({
    kafka: deps.kafka,
    groupId: settings.consumerGroupId,
    topics: [telemetryTopic],
    chunkHandler: handleChunk,
    producer,
    logger,
    initialRetryMs: settings.initialRetryMs,
    maxRetryMs: settings.maxRetryMs,
    sessionTimeoutMs: settings.sessionTimeoutMs,
    maxFailingMs: settings.stuckExitMs,
    onFatal: deps.onFatal,
    onRecordDone: (_record, outcome, error) => {
      if (outcome === 'dead_lettered')
        metrics.deadLetters.inc({ reason: error instanceof AppError ? error.code : 'unexpected_error' });
    },
  });

  const work = createWorkHealth({
    producer,
    runner,
    notReadyAfterMs: settings.notReadyAfterMs,
    fatalAfterMs: settings.stuckExitMs,
    onFatal: deps.onFatal,
  });
  const isReady = () =>
    sessionSchemaId !== undefined && redis.status === 'ready' && !restorer.isRestoring() && work.ready();
  const service = createOpsService({
    name: 'session aggregator',
    httpPort: settings.httpPort,
    shutdownDrainMs: settings.shutdownDrainMs,
    registry: deps.registry,
    logger,
    readiness: () => ({
      schema: sessionSchemaId !== undefined,
      state: !restorer.isRestoring(),
      redis: redis.status === 'ready',
      ...work.detail(),
    }),
    start: async () => {
      await redis.connect();
      await ensureTopics(deps.kafka, [
        { topic: telemetryTopic, numPartitions: settings.sessionsTopicPartitions },
        { topic: sessionsTopic, numPartitions: settings.sessionsTopicPartitions },
        { topic: dlqTopic(telemetryTopic), numPartitions: 1 },
      ]);
      await ensureChangelogTopic(deps.kafka, { telemetryTopic, changelogTopic }, logger);
      sessionSchemaId = await registerCanonicalSchema(
        schemaRegistry,
        settings.schemaRegistryUrl,
        sessionsTopic,
        Topics.chargingSessions,
      );
      await producer.connect();
      // Before the first chunk: a Redis that came back empty is refilled now rather than by failing chunks.
      await restorer.ensureRestored();
      await runner.start();
      work.start();
      const tick = () => {
        sweeping = sweep()
          .catch((err: unknown) => {
            logger.warn({ err }, 'timeout sweep failed; retrying at the next interval');
            return 0;
          })
          .finally(() => {
            sweeping = undefined;
            if (sweeper) sweeper = setTimeout(tick, settings.sweepIntervalMs);
          });
      };
      sweeper = setTimeout(tick, settings.sweepIntervalMs);
    },
    stop: async () => {
      work.stop();
      clearTimeout(sweeper);
      sweeper = undefined;
      await sweeping;
      await runner.stop();
      await producer.disconnect(settings.shutdownDrainMs);
      await redis.quit();
    },
  });
  return { ...service, isReady, sweep };
}
