import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type Redis from 'ioredis';
import type { Kafka } from 'kafkajs';
import { Topics, dlqTopic, type ChargingSession, type VehicleTelemetry } from '@ampflow/contracts';
import {
  createConsumerRunner,
  createReliableProducer,
  ensureTopics,
  registerCanonicalSchema,
  type ChunkHandler,
  type OutputRecord,
} from '@ampflow/kafka';
import type { Logger, Registry } from '@ampflow/observability';
import { AppError, DependencyError, ValidationError, createOpsService, type Service } from '@ampflow/runtime';
import { createAggregatorMetrics } from './metrics';
import { createRedisSessionStore, type StateWrite } from './redis-session-store';
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
  initialRetryMs?: number;
  maxRetryMs?: number;
  sessionTimeoutMs?: number;
}

export interface AggregatorDeps {
  settings: AggregatorSettings;
  kafka: Kafka;
  redis: Redis;
  logger: Logger;
  registry: Registry;
  /** Wall clock, for timeout deadlines (tests move it). */
  now?: () => number;
}

/**
 * The session aggregator: reads `ev.vehicle-telemetry.v1`, applies each reading to its vehicle's state in
 * Redis with the pure reducer, and produces STARTED / UPDATED / ENDED records to `ev.charging-sessions.v1`.
 * Per chunk: load states, reduce, produce the changes, and only after Kafka acknowledged them write the states
 * (compare-and-set) and commit the offsets. A sweeper ends sessions whose inactivity deadline passed.
 */
export function createAggregatorApp(
  deps: AggregatorDeps,
): Service & { port(): number; isReady(): boolean; sweep(): Promise<number> } {
  const { settings, logger, redis } = deps;
  const now = deps.now ?? Date.now;
  const telemetryTopic = settings.telemetryTopic ?? Topics.vehicleTelemetry;
  const sessionsTopic = settings.sessionsTopic ?? Topics.chargingSessions;
  const store = createRedisSessionStore(redis, {
    namespace: settings.redisNamespace ?? 'ampflow:sessions',
    stateTtlSeconds: settings.stateTtlSeconds,
  });
  const metrics = createAggregatorMetrics(deps.registry, () => store.openSessions());
  const schemaRegistry = new SchemaRegistry({ host: settings.schemaRegistryUrl });
  const producer = createReliableProducer(deps.kafka);
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
    const stored = await timed('load', () => store.load([...byVehicle.keys()]));
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
      outputs: await Promise.all(changes.map(toOutput)),
      deadLetters,
      afterSend: async () => {
        const lost = await timed('save', () => store.save(writes));
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
    const due = await store.due(now(), 100);
    for (const { vehicleId } of due) {
      if (!(await store.claim(vehicleId, 30_000))) continue;
      try {
        const stored = (await store.load([vehicleId])).get(vehicleId);
        if (!stored) continue;
        // The wall-clock deadline passed with no reading: end the session whatever the provider clock says.
        const { state, changes } = expire(stored.state, Number.MAX_SAFE_INTEGER, settings);
        if (changes.length > 0)
          await producer.send(
            sessionsTopic,
            (await Promise.all(changes.map(toOutput))).map((o) => o.message),
          );
        const lost = await store.save([
          { vehicleId, expectedRev: stored.rev, state, deadline: deadlineOf(state) },
        ]);
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
    onRecordDone: (_record, outcome, error) => {
      if (outcome === 'dead_lettered')
        metrics.deadLetters.inc({ reason: error instanceof AppError ? error.code : 'unexpected_error' });
    },
  });

  const isReady = () =>
    sessionSchemaId !== undefined && producer.isConnected() && redis.status === 'ready' && runner.isRunning();
  const service = createOpsService({
    name: 'session aggregator',
    httpPort: settings.httpPort,
    shutdownDrainMs: settings.shutdownDrainMs,
    registry: deps.registry,
    logger,
    readiness: () => ({
      schema: sessionSchemaId !== undefined,
      kafka: producer.isConnected(),
      redis: redis.status === 'ready',
      consumer: runner.isRunning(),
    }),
    start: async () => {
      await redis.connect();
      await ensureTopics(deps.kafka, [
        { topic: telemetryTopic, numPartitions: settings.sessionsTopicPartitions },
        { topic: sessionsTopic, numPartitions: settings.sessionsTopicPartitions },
        { topic: dlqTopic(telemetryTopic), numPartitions: 1 },
      ]);
      sessionSchemaId = await registerCanonicalSchema(
        schemaRegistry,
        settings.schemaRegistryUrl,
        sessionsTopic,
        Topics.chargingSessions,
      );
      await producer.connect();
      await runner.start();
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
