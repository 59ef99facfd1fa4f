import { randomBytes } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { topicConfigEntries } from '@ampflow/contracts';
import { ensureTopics } from '@ampflow/kafka';
import type { Logger } from '@ampflow/observability';
import { DependencyError } from '@ampflow/runtime';
import type { SessionStore } from './redis-session-store';
import {
  decodeChangelogRecord,
  latestPerVehicle,
  restoreWriteOf,
  type ChangelogEntry,
} from './state-changelog';

/**
 * Creates the changelog topic if it is missing, with as many partitions as the telemetry topic (the same key, so
 * vehicle `v`'s readings and its state sit on partitions of the same number), and gives it the catalogue's configs.
 */
export async function ensureChangelogTopic(
  kafka: Kafka,
  topics: { telemetryTopic: string; changelogTopic: string },
  logger: Logger,
): Promise<void> {
  const admin = kafka.admin();
  const partitionsOf = async (topic: string) => {
    const { topics: meta } = await admin.fetchTopicMetadata({ topics: [topic] });
    return meta[0]?.partitions.length ?? 0;
  };
  await admin.connect();
  try {
    const partitions = await partitionsOf(topics.telemetryTopic);
    if (partitions === 0)
      throw new DependencyError('kafka_unavailable', `no metadata for ${topics.telemetryTopic}`);
    // Compacted, segments rolled hourly (the catalogue's reasons are in docs/topics.md).
    await ensureTopics(
      kafka,
      [
        {
          topic: topics.changelogTopic,
          numPartitions: partitions,
          configEntries: topicConfigEntries('stateChangelog'),
        },
      ],
      { logger },
    );
    // An existing topic is left as it is. A different count still restores correctly (every partition is
    // read), but the topics are no longer co-partitioned, which an operator should know.
    const changelogPartitions = await partitionsOf(topics.changelogTopic);
    if (changelogPartitions !== partitions)
      logger.warn(
        { topic: topics.changelogTopic, partitions: changelogPartitions, telemetryPartitions: partitions },
        'the state changelog topic has a different partition count than the telemetry topic',
      );
  } finally {
    await admin.disconnect();
  }
}

export interface StateRestorerOptions {
  kafka: Kafka;
  store: SessionStore;
  changelogTopic: string;
  /** Prefix of the throwaway consumer group a restore reads with (it commits nothing). */
  groupIdPrefix: string;
  logger: Logger;
  /** Wall clock (epoch ms), for the TTL left to restored states. */
  now: () => number;
  stateTtlSeconds: number;
  /** A restore that has not reached the high watermarks by then fails and is tried again (default 10 min). */
  restoreTimeoutMs?: number;
  /** How long the restore lock lives without a refresh (default 30 s; refreshed every third of it). */
  lockTtlMs?: number;
  onRestored?: (info: { vehicles: number; records: number; seconds: number }) => void;
  onFailed?: (error: unknown) => void;
}

export interface StateRestorer {
  /**
   * Resolves once Redis holds the marker: at once when it does, after this instance restored it from the
   * changelog, or after another instance did (it holds the restore lock; this one waits). Rejects with a
   * retriable {@link DependencyError} when the restore fails or takes longer than `restoreTimeoutMs`.
   */
  ensureRestored(): Promise<void>;
  /** Starts {@link ensureRestored} in the background (once, however often called); failures are logged. */
  trigger(): void;
  isRestoring(): boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Refills an empty Redis from the compacted changelog topic: reads every partition from the beginning to the
 * high watermark it had when the restore began, writes each vehicle's latest state and deadline, then sets the
 * marker (a new epoch). One instance restores at a time (a Redis lock with a token, refreshed while it runs);
 * the restore's writes are refused once a marker exists or the lock is not its own, so a second restore (after
 * the lock expired, or after another reset) can neither overwrite states in use nor mix with the first.
 */
export function createStateRestorer(options: StateRestorerOptions): StateRestorer {
  const log = options.logger.child({ component: 'state-restore', topic: options.changelogTopic });
  const restoreTimeoutMs = options.restoreTimeoutMs ?? 600_000;
  const lockTtlMs = options.lockTtlMs ?? 30_000;
  let running: Promise<void> | undefined;

  /** Reads the changelog into Redis under the lock `token`; returns the counts. */
  async function restoreUnderLock(token: string): Promise<{ vehicles: number; records: number }> {
    const admin = options.kafka.admin();
    await admin.connect();
    let targets: Map<number, number>;
    try {
      const offsets = await admin.fetchTopicOffsets(options.changelogTopic);
      targets = new Map(
        offsets.filter((o) => Number(o.high) > Number(o.low)).map((o) => [o.partition, Number(o.high)]),
      );
    } finally {
      await admin.disconnect();
    }
    let records = 0;
    const vehicles = new Set<string>();
    if (targets.size === 0) return { vehicles: 0, records };

    // kafkajs 2.2.4 has no manual assignment: a consumer group of our own that commits nothing reads from the
    // beginning (it is empty after the disconnect and expires on its own).
    const consumer = options.kafka.consumer({
      groupId: `${options.groupIdPrefix}.restore-${randomBytes(6).toString('hex')}`,
      maxWaitTimeInMs: 100,
      maxBytesPerPartition: 4 * 1024 * 1024,
      allowAutoTopicCreation: false,
    });
    let settle: { resolve: () => void; reject: (err: unknown) => void } | undefined;
    const finished = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    const timer = setTimeout(
      () =>
        settle!.reject(
          new DependencyError(
            'restore_timeout',
            `restoring from ${options.changelogTopic} took over ${restoreTimeoutMs} ms`,
          ),
        ),
      restoreTimeoutMs,
    );
    consumer.on(consumer.events.CRASH, (event) => settle!.reject(event.payload.error));
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [options.changelogTopic], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        partitionsConsumedConcurrently: 4,
        eachBatch: async ({ batch, heartbeat }) => {
          try {
            const target = targets.get(batch.partition);
            if (target === undefined) return;
            const entries: Array<{ vehicleId: string; entry: ChangelogEntry | null }> = [];
            for (const message of batch.messages) {
              if (Number(message.offset) >= target) break;
              records += 1;
              try {
                const entry = decodeChangelogRecord(message.key, message.value);
                entries.push({ vehicleId: message.key!.toString(), entry });
              } catch (err) {
                // Only this service writes the topic; a record it cannot read must not block every restore.
                log.error(
                  { err, partition: batch.partition, offset: message.offset },
                  'skipping an unreadable changelog record',
                );
              }
            }
            const now = options.now();
            const writes = latestPerVehicle(entries).map(({ vehicleId, entry }) =>
              restoreWriteOf(vehicleId, entry, now, options.stateTtlSeconds),
            );
            for (const w of writes) {
              if (w.state) vehicles.add(w.vehicleId);
              else vehicles.delete(w.vehicleId);
            }
            if (!(await options.store.restore(token, writes)))
              throw new DependencyError(
                'restore_superseded',
                'the restore lock was lost or Redis is already restored',
              );
            await heartbeat();
            if (Number(batch.lastOffset()) + 1 >= target) targets.delete(batch.partition);
            if (targets.size === 0) settle!.resolve();
          } catch (err) {
            settle!.reject(err);
          }
        },
      });
      await finished;
    } finally {
      clearTimeout(timer);
      await consumer
        .disconnect()
        .catch((err: unknown) => log.warn({ err }, 'restore consumer did not disconnect cleanly'));
    }
    return { vehicles: vehicles.size, records };
  }

  async function restoreOnce(token: string): Promise<void> {
    const started = Date.now();
    const refresher = setInterval(() => {
      options.store.refreshRestoreLock(token, lockTtlMs).catch(() => false);
    }, lockTtlMs / 3);
    try {
      // Another instance may have finished between our marker check and taking the lock.
      if ((await options.store.epoch()) !== null) return;
      log.warn(
        'Redis holds no session state marker (restarted empty or flushed): restoring from the changelog',
      );
      const { vehicles, records } = await restoreUnderLock(token);
      const epoch = `${Date.now()}-${randomBytes(4).toString('hex')}`;
      if (!(await options.store.completeRestore(token, epoch)))
        throw new DependencyError(
          'restore_superseded',
          'the restore lock was lost before the restore completed',
        );
      const seconds = (Date.now() - started) / 1000;
      log.info({ vehicles, records, seconds, epoch }, 'session state restored from the changelog');
      options.onRestored?.({ vehicles, records, seconds });
    } finally {
      clearInterval(refresher);
      await options.store.releaseRestoreLock(token).catch(() => undefined);
    }
  }

  async function ensureRestored(): Promise<void> {
    const deadline = Date.now() + restoreTimeoutMs;
    for (;;) {
      let epoch: string | null;
      try {
        epoch = await options.store.epoch();
      } catch (err) {
        throw new DependencyError('redis_unavailable', 'Redis did not answer', { cause: err });
      }
      if (epoch !== null) return;
      const token = randomBytes(8).toString('hex');
      if (await options.store.lockRestore(token, lockTtlMs)) {
        try {
          await restoreOnce(token);
          return;
        } catch (err) {
          throw err instanceof DependencyError
            ? err
            : new DependencyError('restore_failed', 'restoring the session state failed', { cause: err });
        }
      }
      // Another instance restores; its marker (or its lock expiring) ends the wait.
      if (Date.now() > deadline)
        throw new DependencyError('restore_timeout', 'waited too long for another instance to restore Redis');
      await sleep(200);
    }
  }

  function ensureOnce(): Promise<void> {
    running ??= ensureRestored().finally(() => {
      running = undefined;
    });
    return running;
  }

  return {
    ensureRestored: ensureOnce,
    trigger() {
      ensureOnce().catch((err: unknown) => {
        log.warn({ err }, 'restoring the session state failed; the next chunk tries again');
        options.onFailed?.(err);
      });
    },
    isRestoring: () => running !== undefined,
  };
}
