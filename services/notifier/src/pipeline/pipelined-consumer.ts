import type { Consumer, Kafka, KafkaMessage } from 'kafkajs';
import { groupConsumer, subscribeWhenReady, watchMembership, type ConsumerHealth } from '@ampflow/kafka';
import type { Logger } from '@ampflow/observability';
import { abortableSleep, createRetryPolicy } from '@ampflow/runtime';
import { createPartitionProgress, type PartitionProgress } from './partition-progress';

export interface PipelineRecord {
  topic: string;
  partition: number;
  message: KafkaMessage;
}

/**
 * Takes a batch of one partition's records, in order. Resolves once the records are *taken* (whatever must
 * happen in partition order has happened), to one promise per record that settles when that record's work is
 * durable (delivered, or scheduled in Kafka) with `true`. Throwing retries the batch after a backoff. A
 * per-record promise must not reject: the handler owns its retries; a rejection is a bug and stops the service.
 * `signal` aborts when the partition is taken away or the service stops: work held for later should be let go
 * then, resolving `false`: it is never committed, so the partition's next reader does it.
 */
export type BatchHandler = (
  records: PipelineRecord[],
  signal: AbortSignal,
) => Promise<Array<Promise<boolean>>>;

export interface PipelinedConsumerOptions {
  kafka: Kafka;
  groupId: string;
  topics: string[];
  handler: BatchHandler;
  logger: Logger;
  /**
   * Records of one partition taken and not yet durable before the partition stops fetching (default 2,000), or
   * per topic.
   */
  maxOutstandingPerPartition?: number | ((topic: string) => number);
  /** How often finished offsets are committed (default 500 ms). */
  commitIntervalMs?: number;
  partitionsConsumedConcurrently?: number;
  sessionTimeoutMs?: number;
  /** A batch whose taking keeps failing this long calls `onFatal` (default 5 min). */
  maxFailingMs?: number;
  onFatal: (error: unknown) => void;
  /** After each fetched batch: records behind the high watermark plus those taken and not committed. */
  onPending?: (info: { topic: string; partition: number; pending: number }) => void;
}

export interface PipelinedConsumer {
  start(): Promise<void>;
  /** Stops fetching, lets held work go, waits up to `drainMs` for work in progress, commits, leaves the group. */
  stop(drainMs?: number): Promise<void>;
  isRunning(): boolean;
  health(): ConsumerHealth;
  /** Records taken and not yet durable, over all partitions. */
  outstanding(): number;
  readonly consumer: Consumer;
}

interface Assigned {
  progress: PartitionProgress;
  abort: AbortController;
  committed: bigint;
  highWatermark: bigint;
  /** Fetching paused because too much work is outstanding (back-pressure); resumed as it drains. */
  paused: boolean;
}

/**
 * A consumer whose records finish out of order: each partition's records are taken in order, their work runs
 * concurrently (deliveries to many endpoints), and an offset is committed only once every record before it is
 * durable. At-least-once: a crash re-reads what was not committed. Unlike the shared consumer runner, a slow
 * record does not hold up the ones behind it, only the committed offset.
 */
export function createPipelinedConsumer(options: PipelinedConsumerOptions): PipelinedConsumer {
  const log = options.logger.child({ component: 'pipeline', groupId: options.groupId });
  const limit = options.maxOutstandingPerPartition ?? 2_000;
  const maxOutstandingOf = typeof limit === 'number' ? () => limit : limit;
  const maxFailingMs = options.maxFailingMs ?? 5 * 60_000;
  const backoff = createRetryPolicy({ baseDelayMs: 200, maxDelayMs: 10_000 });
  const consumer = groupConsumer(options.kafka, {
    groupId: options.groupId,
    sessionTimeoutMs: options.sessionTimeoutMs,
    maxWaitTimeInMs: 500,
  });
  const partitions = new Map<string, Assigned>();
  const failingSince = new Map<string, number>();
  const inWork = new Set<Promise<void>>();
  let stopping = false;
  let commitTimer: NodeJS.Timeout | undefined;
  let committing: Promise<void> = Promise.resolve();

  const keyOf = (topic: string, partition: number) => `${topic}\u0000${partition}`;

  function assigned(topic: string, partition: number): Assigned {
    const key = keyOf(topic, partition);
    let entry = partitions.get(key);
    if (!entry) {
      entry = {
        progress: createPartitionProgress(),
        abort: new AbortController(),
        committed: -1n,
        highWatermark: -1n,
        paused: false,
      };
      partitions.set(key, entry);
    }
    return entry;
  }

  function release(entry: Assigned, topic: string, partition: number) {
    entry.abort.abort();
    resume(entry, topic, partition);
  }

  function resume(entry: Assigned, topic: string, partition: number) {
    if (!entry.paused || stopping) return;
    entry.paused = false;
    consumer.resume([{ topic, partitions: [partition] }]);
  }

  const splitKey = (key: string): [string, number] => {
    const at = key.lastIndexOf('\u0000');
    return [key.slice(0, at), Number(key.slice(at + 1))];
  };

  const membership = watchMembership(consumer, {
    logger: log,
    onFatal: options.onFatal,
    isStopping: () => stopping,
    onJoin: (assignment) => {
      const keep = new Set<string>();
      for (const [topic, list] of Object.entries(assignment)) for (const p of list) keep.add(keyOf(topic, p));
      // A partition that moved to another member: its held work is let go (the new owner reads it from the
      // committed offset). One this member keeps goes on where it was: nobody else had it in between.
      for (const [key, entry] of partitions) {
        if (keep.has(key)) continue;
        const [topic, partition] = splitKey(key);
        release(entry, topic, partition);
        // Its pending count is the new owner's to report now.
        options.onPending?.({ topic, partition, pending: 0 });
        partitions.delete(key);
      }
    },
  });

  async function commit(): Promise<void> {
    const offsets: Array<{ topic: string; partition: number; offset: string }> = [];
    const moved: Array<[Assigned, bigint]> = [];
    for (const [key, entry] of partitions) {
      const offset = entry.progress.committable();
      if (offset === null || offset <= entry.committed) continue;
      const [topic, partition] = key.split('\u0000') as [string, string];
      offsets.push({ topic, partition: Number(partition), offset: offset.toString() });
      moved.push([entry, offset]);
    }
    if (offsets.length === 0) return;
    try {
      await consumer.commitOffsets(offsets);
      for (const [entry, offset] of moved) entry.committed = offset;
    } catch (error) {
      // A rebalance in between (the partition is someone else's now) or a broker away: the next tick tries
      // again with whatever is committable then; nothing is lost, at worst re-read.
      log.warn({ err: error }, 'offset commit failed; retrying at the next interval');
    }
  }

  const commitSerial = () => {
    committing = committing.then(commit, commit);
    return committing;
  };

  function pendingOf(entry: Assigned): number {
    if (entry.highWatermark < 0n) return 0;
    const from =
      entry.committed >= 0n ? entry.committed : (entry.progress.committable() ?? entry.highWatermark);
    return Number(entry.highWatermark - from);
  }

  return {
    consumer,
    isRunning: () => membership.running(),
    outstanding: () => inWork.size,
    health: () => ({
      running: membership.running(),
      failingMs: failingSince.size === 0 ? 0 : Date.now() - Math.min(...failingSince.values()),
    }),
    async start() {
      await consumer.connect();
      await subscribeWhenReady(consumer, { topics: options.topics, fromBeginning: true });
      commitTimer = setInterval(() => void commitSerial(), options.commitIntervalMs ?? 500);
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: options.partitionsConsumedConcurrently ?? 4,
        eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
          const entry = assigned(batch.topic, batch.partition);
          const maxOutstanding = maxOutstandingOf(batch.topic);
          entry.highWatermark = BigInt(batch.highWatermark);
          const fresh = batch.messages.filter((m) => entry.progress.isNew(BigInt(m.offset)));
          const failKey = keyOf(batch.topic, batch.partition);
          let index = 0;
          while (index < fresh.length) {
            if (!isRunning() || isStale() || entry.abort.signal.aborted) return;
            // Back-pressure: a partition with too much work outstanding stops fetching (without holding up the
            // others) until its work drains; what was not taken is fetched again then.
            if (entry.progress.outstanding >= maxOutstanding) {
              entry.paused = true;
              consumer.pause([{ topic: batch.topic, partitions: [batch.partition] }]);
              break;
            }
            const room = maxOutstanding - entry.progress.outstanding;
            const slice = fresh.slice(index, index + room);
            const records = slice.map((message) => ({
              topic: batch.topic,
              partition: batch.partition,
              message,
            }));
            let completions: Array<Promise<boolean>> | undefined;
            for (let attempt = 0; completions === undefined; attempt += 1) {
              try {
                completions = await options.handler(records, entry.abort.signal);
              } catch (error) {
                const since = failingSince.get(failKey) ?? Date.now();
                failingSince.set(failKey, since);
                if (Date.now() - since > maxFailingMs) {
                  log.error({ err: error, maxFailingMs }, 'records kept failing; giving up');
                  options.onFatal(error);
                  return;
                }
                const delayMs = backoff.delayMs(attempt);
                log.warn(
                  { err: error, topic: batch.topic, partition: batch.partition, delayMs },
                  'taking records failed; retrying',
                );
                const until = Date.now() + delayMs;
                while (Date.now() < until) {
                  if (!isRunning() || isStale() || entry.abort.signal.aborted) return;
                  await heartbeat();
                  await abortableSleep(Math.min(500, until - Date.now()), entry.abort.signal);
                }
              }
            }
            failingSince.delete(failKey);
            slice.forEach((message, i) => {
              const offset = BigInt(message.offset);
              entry.progress.take(offset);
              const work = completions[i]!.then(
                (durable) => {
                  if (!durable) return;
                  entry.progress.finish(offset);
                  if (entry.paused && entry.progress.outstanding <= maxOutstanding / 2) {
                    resume(entry, batch.topic, batch.partition);
                  }
                },
                (error: unknown) => {
                  log.error({ err: error, topic: batch.topic, offset: message.offset }, 'record work failed');
                  if (!stopping) options.onFatal(error);
                },
              );
              inWork.add(work);
              void work.finally(() => inWork.delete(work));
            });
            // The fetch position moves on; the committed offset only once the work is durable.
            resolveOffset(slice[slice.length - 1]!.offset);
            index += slice.length;
            await heartbeat();
          }
          options.onPending?.({ topic: batch.topic, partition: batch.partition, pending: pendingOf(entry) });
        },
      });
    },
    async stop(drainMs = 10_000) {
      stopping = true;
      clearInterval(commitTimer);
      // Fetching stops but the membership stays, so that what finishes while draining can still be committed
      // (kafkajs's `stop()` leaves the group, after which no commit is possible and everything finished since the
      // last tick would be delivered again by the next owner).
      consumer.pause(options.topics.map((topic) => ({ topic })));
      // Held work (a retry not due yet) is let go now; deliveries in progress get `drainMs` to finish.
      for (const entry of partitions.values()) entry.abort.abort();
      const drained = Promise.allSettled([...inWork]);
      await Promise.race([drained, new Promise((resolve) => setTimeout(resolve, drainMs).unref())]);
      await commitSerial();
      await consumer.disconnect();
    },
  };
}
