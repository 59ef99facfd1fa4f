import type { Consumer, Kafka, KafkaMessage } from 'kafkajs';
import type { Logger } from '@ampflow/observability';
import { abortableSleep, createRetryPolicy } from '@ampflow/runtime';
import {
  groupConsumer,
  processChunk,
  watchMembership,
  type ChunkDeps,
  type ConsumedRecord,
  type ConsumerHandler,
  type ConsumerHealth,
  type RecordOutcome,
} from './consumer-runner';
import { createOrderedQueue, type ConsumerOrdering, type OrderedQueue } from './ordered-queue';
import { createPartitionProgress, type PartitionProgress } from './partition-progress';
import type { ReliableProducer } from './producer';
import { subscribeWhenReady } from './topics-admin';

/**
 * A handler that takes records and owns their work from then on (the notifier hands deliveries to its
 * dispatcher, which retries them itself). It is given a chunk of one partition's records in offset order and
 * resolves once they are *taken* (whatever must happen in partition order has happened), to one promise per
 * record that settles when that record's work is durable, with `true`; or with `false` when the work was let go
 * because `signal` aborted (the partition was revoked or the service stops): such a record is never committed,
 * so the partition's next reader does it. Throwing retries the chunk after a backoff. A per-record promise must
 * not reject: a rejection is a bug and calls `onFatal`.
 */
export type TakeHandler = (
  records: ConsumedRecord[],
  signal: AbortSignal,
) => Promise<Array<Promise<boolean>>>;

export interface ConsumerOptions {
  kafka: Kafka;
  groupId: string;
  topics: string[];
  /** Where a group without committed offsets starts (default true: the beginning). */
  fromBeginning?: boolean;
  ordering: ConsumerOrdering;
  /**
   * An outcome handler (`perRecord` / `perChunk`, see {@link ConsumerHandler}: the consumer sends its outputs
   * and dead letters with `producer`), or a {@link TakeHandler} that owns the records' work (`take`).
   */
  handler: ConsumerHandler | { take: TakeHandler };
  /** Sends the outcome handlers' outputs and dead letters (`<topic>.dlq`); required with them. */
  producer?: Pick<ReliableProducer, 'send'>;
  logger: Logger;
  /** Records given to the handler at once (default 500). */
  maxChunkRecords?: number;
  /**
   * Records of one partition in the handler's hands and not finished (default twice `maxChunkRecords`), or per
   * topic. Records fetched beyond it are held, and taken as half of those in flight finish.
   */
  maxInFlightPerPartition?: number | ((topic: string) => number);
  /**
   * Records of one partition fetched and held (not yet in flight) before that partition stops fetching (default:
   * its `maxInFlightPerPartition`), or per topic. Fetching resumes once half of them were taken, so the next
   * fetch can arrive before the held ones run out; nothing fetched is dropped and fetched again. A partition
   * may hold this many plus the rest of one fetch (`maxBytesPerPartition`).
   */
  maxHeldPerPartition?: number | ((topic: string) => number);
  /**
   * Describe the group after each join (one request per rebalance), for {@link KafkaConsumer.membersAtJoin}: a
   * handler that must wait for a previous owner of a partition (the notifier's handover) need not when this
   * member is the group's only one.
   */
  describeGroupOnJoin?: boolean;
  /**
   * kafkajs `partitionsConsumedConcurrently`. Handing records over is synchronous, so this only decides how
   * many partitions' batches of one fetch wait out the fetch pacing together (default: all of them, 64;
   * 1 without pacing).
   */
  partitionsConsumedConcurrently?: number;
  /**
   * Fetch pacing (default {@link DEFAULT_FETCH_INTERVAL_MS}; 0: off): after a fetch that brought records, the
   * next fetch goes out no sooner than this many ms after that one went out. At low rates a fetch waits
   * longer than that for its first record anyway, so nothing changes; when records come faster, they gather
   * in the broker in the meantime, and one fetch, one chunk and one produce request carry several of them
   * instead of one each. The records already fetched are handed over at once; a record costs at most this
   * much more latency per hop.
   */
  fetchIntervalMs?: number;
  /** Fetch requests: the broker answers once `minBytes` (default 1) are there or `maxWaitTimeMs` (default 1 s) passed. */
  minBytes?: number;
  maxWaitTimeMs?: number;
  /**
   * Fetch response sizes (bytes): at most `maxBytes` (default 1 MiB) per fetch request to a broker and
   * `maxBytesPerPartition` (default 256 KiB) per partition in it (kafkajs: 10 MiB and 1 MiB). A record batch
   * larger than either still comes whole (the broker sends the first batch regardless), so no record is too big
   * to be read. The records of a response share its buffer until the last of them is finished, so these bound
   * the memory a backlog's fetch-ahead holds (docs/memory.md).
   */
  maxBytes?: number;
  maxBytesPerPartition?: number;
  /**
   * Commit policy: finished offsets are committed `commitIntervalMs` (default 1 s) after the first record
   * finished since the last commit, or at once when `commitAfterRecords` (default 10,000) finished since then;
   * and always on a rebalance and on stop. Nothing is committed while nothing finishes (no idle commits).
   */
  commitIntervalMs?: number;
  commitAfterRecords?: number;
  /** Backoff between retries of a failing chunk: exponential with full jitter from `initialRetryMs` (200) up to `maxRetryMs` (10 s). */
  initialRetryMs?: number;
  maxRetryMs?: number;
  /** Consumer group session timeout (default 10 s); heartbeats go every second. */
  sessionTimeoutMs?: number;
  /** How long one chunk may keep failing before `onFatal` (default 5 min). */
  maxFailingMs?: number;
  /**
   * Called when the consumer cannot go on by itself: kafkajs gave up on it (a CRASH without restart), a chunk
   * kept failing for `maxFailingMs`, or a take handler's record promise rejected. Services exit non-zero.
   */
  onFatal: (error: unknown) => void;
  /** Outcome handlers: called for each record once its outputs (or dead letter) are acknowledged. */
  onRecordDone?: (record: ConsumedRecord, outcome: RecordOutcome) => void;
  /**
   * Called after each fetched batch, when every record fetched of a partition finished, and with 0 for a
   * partition this member no longer holds: `lag` is the records of the partition not finished yet (behind its
   * high watermark as of the last fetch, or fetched and in flight).
   */
  onBatchDone?: (info: { topic: string; partition: number; lag: number }) => void;
}

/**
 * The default fetch pacing: 5 ms. At 500 records/s it gathers ~3 records per fetch (a third of the fetches,
 * produce requests and Redis round trips of one record each); at 50/s (20 ms apart) it adds nothing.
 */
export const DEFAULT_FETCH_INTERVAL_MS = 5;

export interface KafkaConsumer {
  start(): Promise<void>;
  /**
   * Stops fetching and handing out records, lets held work and retries go, waits up to `drainMs` (default
   * 10 s) for the work in progress, commits what finished, leaves the group.
   */
  stop(drainMs?: number): Promise<void>;
  /** True while the consumer is a member of its group. */
  isRunning(): boolean;
  health(): ConsumerHealth;
  /** Records fetched and not finished yet, over all partitions. */
  inFlight(): number;
  /**
   * With `describeGroupOnJoin`: how many members the group had when this member last joined it (0 while unknown
   * or when the group could not be described). Records of an assignment are handed out only once it is known.
   */
  membersAtJoin(): number;
  /** When this member last joined its group (epoch ms; 0 before the first join). */
  joinedAt(): number;
  readonly consumer: Consumer;
}

/** One partition this member holds. */
interface Lane {
  topic: string;
  partition: number;
  /** For `failingSince` and logs. */
  id: string;
  /** Which offsets were accepted from fetches and which finished. */
  progress: PartitionProgress;
  /** Records accepted and not finished, in the order the handler may have them. */
  queue: OrderedQueue;
  /** True while `pump` runs for this lane. */
  pumping: boolean;
  /** Aborts when the partition is revoked or the consumer stops: held work is let go. */
  abort: AbortController;
  /** The highest offset committed, and the highest sent in a commit request (acknowledged or not). */
  committed: bigint;
  requested: bigint;
  highWatermark: bigint;
  /** Fetching paused because too many records are held; resumed as they are taken. */
  paused: boolean;
  maxInFlight: number;
  maxHeld: number;
  /**
   * Records fetched while `maxInFlight` were in flight, in offset order: kept (not fetched again) and taken as
   * records finish. The fetch position is past them; the committed offset is not (they were never taken).
   */
  held: KafkaMessage[];
  /** The offset of the last record put in `held` (-1 before any): a record fetched again up to it is not new. */
  heldUntil: bigint;
}

/**
 * The one consumer of the platform: records of each partition are fetched ahead (bounded), handed to the
 * handler in chunks in the order `ordering` allows, and an offset is committed only once every record before
 * it is finished (at-least-once: a crash or a rebalance re-reads only what was not finished). A failing chunk
 * is retried with backoff (never dead-lettered for a dependency outage); what can never succeed goes to
 * `<topic>.dlq` through the outcome contract of {@link processChunk}.
 */
export function createConsumer(options: ConsumerOptions): KafkaConsumer {
  const log = options.logger.child({ component: 'consumer', groupId: options.groupId });
  const ordering = options.ordering;
  const maxChunkRecords = options.maxChunkRecords ?? 500;
  const limit = options.maxInFlightPerPartition ?? 2 * maxChunkRecords;
  const maxInFlightOf = typeof limit === 'number' ? () => limit : limit;
  const holdLimit = options.maxHeldPerPartition ?? maxInFlightOf;
  const maxHeldOf = typeof holdLimit === 'number' ? () => holdLimit : holdLimit;
  const maxFailingMs = options.maxFailingMs ?? 5 * 60_000;
  const commitIntervalMs = options.commitIntervalMs ?? 1_000;
  const commitAfterRecords = options.commitAfterRecords ?? 10_000;
  const backoff = createRetryPolicy({
    baseDelayMs: options.initialRetryMs ?? 200,
    maxDelayMs: options.maxRetryMs ?? 10_000,
  });
  const handler = options.handler;
  if (!('take' in handler) && !options.producer) {
    throw new Error('an outcome handler (perRecord / perChunk) needs a producer for its outputs');
  }
  const chunkDeps: ChunkDeps | undefined = options.producer
    ? { producer: options.producer, logger: log }
    : undefined;
  const consumer = groupConsumer(options.kafka, {
    groupId: options.groupId,
    sessionTimeoutMs: options.sessionTimeoutMs,
    maxWaitTimeInMs: options.maxWaitTimeMs ?? 1_000,
    minBytes: options.minBytes ?? 1,
    maxBytes: options.maxBytes,
    maxBytesPerPartition: options.maxBytesPerPartition,
  });
  const fetchIntervalMs = options.fetchIntervalMs ?? DEFAULT_FETCH_INTERVAL_MS;
  /** When the last fetch went out, and the wait that paces the next one (shared by the fetch's batches). */
  let fetchStartedAt = 0;
  let pacing: Promise<void> | undefined;
  if (fetchIntervalMs > 0) {
    consumer.on(consumer.events.FETCH_START, () => {
      fetchStartedAt = Date.now();
      pacing = undefined;
    });
  }
  /** Resolves when the next fetch may go out (kafkajs sends it once every batch of this one returned). */
  function paced(): Promise<void> | undefined {
    if (fetchIntervalMs <= 0) return undefined;
    if (!pacing) {
      const waitMs = fetchStartedAt + fetchIntervalMs - Date.now();
      pacing = waitMs > 0 ? new Promise((resolve) => setTimeout(resolve, waitMs)) : Promise.resolve();
    }
    return pacing;
  }
  const lanes = new Map<string, Lane>();
  /** When the chunk in hand started failing, per lane. */
  const failingSince = new Map<string, number>();
  /** Work handed out and not settled (drained on stop). */
  const inWork = new Set<Promise<void>>();
  let started = false;
  let stopping = false;
  let uncommittedRecords = 0;
  let commitTimer: NodeJS.Timeout | undefined;
  let committing: Promise<void> = Promise.resolve();

  const laneId = (topic: string, partition: number) => `${topic}:${partition}`;

  function laneOf(topic: string, partition: number): Lane {
    const id = laneId(topic, partition);
    let lane = lanes.get(id);
    if (!lane) {
      lane = {
        topic,
        partition,
        id,
        progress: createPartitionProgress(),
        queue: createOrderedQueue(ordering, maxChunkRecords),
        pumping: false,
        abort: new AbortController(),
        committed: -1n,
        requested: -1n,
        highWatermark: -1n,
        paused: false,
        maxInFlight: maxInFlightOf(topic),
        maxHeld: maxHeldOf(topic),
        held: [],
        heldUntil: -1n,
      };
      lanes.set(id, lane);
    }
    return lane;
  }

  function resume(lane: Lane): void {
    if (!lane.paused || stopping) return;
    lane.paused = false;
    consumer.resume([{ topic: lane.topic, partitions: [lane.partition] }]);
  }

  /** A partition that moved to another member: its held work is let go (the new owner reads it from the committed offset). */
  function release(lane: Lane): void {
    lane.abort.abort();
    resume(lane);
    lanes.delete(lane.id);
    failingSince.delete(lane.id);
    // Its lag is the new owner's to report now.
    options.onBatchDone?.({ topic: lane.topic, partition: lane.partition, lag: 0 });
  }

  /** Members of the group at the last join (0: unknown), and the description in progress. */
  let membersAtJoin = 0;
  let joinedAt = 0;
  let described: Promise<void> | undefined;
  const membership = watchMembership(consumer, {
    logger: log,
    onFatal: options.onFatal,
    isStopping: () => stopping,
    onJoin: (assignment) => {
      joinedAt = Date.now();
      if (options.describeGroupOnJoin) {
        membersAtJoin = 0;
        const describing: Promise<void> = consumer.describeGroup().then(
          (group) => {
            if (described === describing) membersAtJoin = group.members.length;
          },
          (error: unknown) => log.warn({ err: error }, 'could not describe the group after joining it'),
        );
        described = describing;
      }
      const keep = new Set<string>();
      for (const [topic, list] of Object.entries(assignment))
        for (const p of list) keep.add(laneId(topic, p));
      // A partition this member keeps goes on where it was: nobody else had it in between. It keeps what it
      // held too (kafkajs fetches a kept partition again from its committed offset: what comes again up to
      // `heldUntil` is skipped as not new), and stays paused if it was.
      for (const lane of [...lanes.values()]) {
        if (!keep.has(lane.id)) release(lane);
        else if (lane.paused) consumer.pause([{ topic: lane.topic, partitions: [lane.partition] }]);
      }
    },
  });
  // The group is about to be rebalanced: what finished is committed before the partitions may move.
  consumer.on(consumer.events.REBALANCING, () => void commitNow());

  // --- commits -------------------------------------------------------------------------------------------

  /** Commits what is finished now (serially after any commit in flight); a failure is retried later. */
  function commitNow(): Promise<void> {
    clearTimeout(commitTimer);
    commitTimer = undefined;
    uncommittedRecords = 0;
    const offsets: Array<{ topic: string; partition: number; offset: string }> = [];
    const moved: Array<[Lane, bigint]> = [];
    for (const lane of lanes.values()) {
      const offset = lane.progress.committable();
      if (offset === null || offset <= lane.requested) continue;
      lane.requested = offset;
      offsets.push({ topic: lane.topic, partition: lane.partition, offset: offset.toString() });
      moved.push([lane, offset]);
    }
    if (offsets.length === 0) return committing;
    const commit = async () => {
      try {
        await consumer.commitOffsets(offsets);
        for (const [lane, offset] of moved) if (offset > lane.committed) lane.committed = offset;
      } catch (error) {
        // A rebalance in between (the partition is someone else's now) or a broker away: tried again later with
        // whatever is committable then; nothing is lost, at worst read again.
        for (const [lane] of moved) lane.requested = lane.committed;
        log.warn({ err: error }, 'offset commit failed; retrying at the next interval');
        scheduleCommit();
      }
    };
    committing = committing.then(commit);
    return committing;
  }

  function scheduleCommit(): void {
    if (commitTimer || stopping) return;
    commitTimer = setTimeout(() => {
      commitTimer = undefined;
      void commitNow();
    }, commitIntervalMs);
    commitTimer.unref();
  }

  /** Takes a fetched record into the lane's work; false when `maxInFlight` are in flight already. */
  function accept(lane: Lane, message: KafkaMessage): boolean {
    if (lane.progress.outstanding >= lane.maxInFlight) return false;
    lane.progress.take(BigInt(message.offset));
    lane.queue.push({ topic: lane.topic, partition: lane.partition, message });
    return true;
  }

  /** Takes held records as far as the limit allows (the caller pumps); fetching resumes once few are held. */
  function takeHeld(lane: Lane): void {
    let taken = 0;
    while (taken < lane.held.length && accept(lane, lane.held[taken]!)) taken += 1;
    if (taken > 0) lane.held.splice(0, taken);
    if (lane.paused && lane.held.length <= lane.maxHeld / 2) resume(lane);
  }

  function finished(lane: Lane, offsets: bigint[]): void {
    for (const offset of offsets) lane.progress.finish(offset);
    // Taken again once half are done, not at every record: chunks stay chunks.
    if (lane.held.length > 0 && lane.progress.outstanding <= lane.maxInFlight / 2) takeHeld(lane);
    // Caught up: the lag reported with the last batch counted these records, and no batch may come for a while.
    if (lane.progress.outstanding === 0) {
      options.onBatchDone?.({ topic: lane.topic, partition: lane.partition, lag: lagOf(lane) });
    }
    uncommittedRecords += offsets.length;
    if (uncommittedRecords >= commitAfterRecords && !stopping) void commitNow();
    else scheduleCommit();
  }

  // --- handing records to the handler ---------------------------------------------------------------------

  /** Waits out a failed attempt; false when the lane should give up (stopped, revoked, or failing too long). */
  async function afterFailure(lane: Lane, error: unknown, attempt: number, what: string): Promise<boolean> {
    const since = failingSince.get(lane.id) ?? Date.now();
    failingSince.set(lane.id, since);
    if (Date.now() - since > maxFailingMs) {
      log.error({ err: error, maxFailingMs }, 'records kept failing; giving up');
      // Nothing after the stuck records may start: the service is going down.
      lane.abort.abort();
      options.onFatal(error);
      return false;
    }
    const delayMs = backoff.delayMs(attempt);
    log.warn({ err: error, topic: lane.topic, partition: lane.partition, delayMs }, `${what}; retrying`);
    await abortableSleep(delayMs, lane.abort.signal);
    return !lane.abort.signal.aborted;
  }

  /** An outcome handler's chunk: handled and sent (retried until done), then its records' outcomes reported. */
  async function runOutcomeChunk(lane: Lane, chunk: ConsumedRecord[]): Promise<boolean> {
    const outcomeHandler = handler as ConsumerHandler;
    try {
      for (let attempt = 0; ; attempt += 1) {
        if (lane.abort.signal.aborted) return false;
        let outcomes: RecordOutcome[];
        try {
          outcomes = await processChunk(chunk, outcomeHandler, chunkDeps!);
        } catch (error) {
          if (!(await afterFailure(lane, error, attempt, 'records failed'))) return false;
          continue;
        }
        if (options.onRecordDone) chunk.forEach((record, j) => options.onRecordDone!(record, outcomes[j]!));
        return true;
      }
    } finally {
      failingSince.delete(lane.id);
    }
  }

  /** A take handler's chunk: taken (retried until taken), to one completion per record; undefined when given up. */
  async function takeChunk(
    lane: Lane,
    chunk: ConsumedRecord[],
    take: TakeHandler,
  ): Promise<Array<Promise<boolean>> | undefined> {
    for (let attempt = 0; ; attempt += 1) {
      if (lane.abort.signal.aborted) return undefined;
      try {
        const completions = await take(chunk, lane.abort.signal);
        failingSince.delete(lane.id);
        return completions;
      } catch (error) {
        if (!(await afterFailure(lane, error, attempt, 'taking records failed'))) return undefined;
      }
    }
  }

  function settle(lane: Lane, records: ConsumedRecord[], done: boolean): void {
    lane.queue.settle(records);
    if (done)
      finished(
        lane,
        records.map((r) => BigInt(r.message.offset)),
      );
    if (!lane.abort.signal.aborted) void pump(lane);
  }

  function track(work: Promise<void>): void {
    inWork.add(work);
    void work.finally(() => inWork.delete(work));
  }

  /** Hands the lane's records to the handler while its ordering allows; runs once per lane at a time. */
  async function pump(lane: Lane): Promise<void> {
    if (lane.pumping) return;
    lane.pumping = true;
    try {
      while (!lane.abort.signal.aborted) {
        const chunk = lane.queue.next();
        if (chunk.length === 0) return;
        if (!('take' in handler)) {
          track(runOutcomeChunk(lane, chunk).then((done) => settle(lane, chunk, done)));
          continue;
        }
        const completions = await takeChunk(lane, chunk, handler.take);
        if (!completions) {
          // Let go (the lane was revoked, stopped or gave up): never finished, so never committed.
          settle(lane, chunk, false);
          return;
        }
        chunk.forEach((record, i) => {
          track(
            completions[i]!.then(
              (done) => settle(lane, [record], done),
              (error: unknown) => {
                log.error(
                  {
                    err: error,
                    topic: record.topic,
                    partition: record.partition,
                    offset: record.message.offset,
                  },
                  'record work failed',
                );
                if (!stopping) options.onFatal(error);
              },
            ),
          );
        });
      }
    } finally {
      lane.pumping = false;
    }
  }

  function lagOf(lane: Lane): number {
    if (lane.highWatermark < 0n) return 0;
    const from = lane.progress.committable() ?? lane.highWatermark;
    return Number(lane.highWatermark - from);
  }

  return {
    consumer,
    isRunning: () => membership.running(),
    inFlight: () => {
      let total = 0;
      for (const lane of lanes.values()) total += lane.progress.outstanding;
      return total;
    },
    membersAtJoin: () => membersAtJoin,
    joinedAt: () => joinedAt,
    health: () => ({
      running: membership.running(),
      failingMs: failingSince.size === 0 ? 0 : Date.now() - Math.min(...failingSince.values()),
    }),
    async start() {
      await consumer.connect();
      await subscribeWhenReady(consumer, {
        topics: options.topics,
        fromBeginning: options.fromBeginning ?? true,
      });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently:
          options.partitionsConsumedConcurrently ?? (fetchIntervalMs > 0 ? 64 : 1),
        eachBatch: async ({ batch, resolveOffset, isRunning, isStale }) => {
          // The group's size at this assignment is known before its records are (one request after a join).
          if (described) await described;
          if (stopping || !isRunning() || isStale()) return;
          const lane = laneOf(batch.topic, batch.partition);
          lane.highWatermark = BigInt(batch.highWatermark);
          // The fetch position moves past what was accepted now or before (a partition kept over a rebalance
          // is fetched again from its committed offset); the committed offset only once records finish.
          let covered: string | undefined;
          let accepted = 0;
          for (const message of batch.messages) {
            const offset = BigInt(message.offset);
            if (lane.progress.isNew(offset) && offset > lane.heldUntil) {
              // Back-pressure: past `maxInFlight`, fetched records are held (in order, behind any held before)
              // rather than dropped and fetched again, and taken as records finish.
              if (lane.held.length === 0 && accept(lane, message)) accepted += 1;
              else {
                lane.held.push(message);
                lane.heldUntil = offset;
              }
            }
            covered = message.offset;
          }
          if (covered !== undefined) resolveOffset(covered);
          // A partition holding `maxHeld` records stops fetching (without holding up the others) until half of
          // them were taken.
          if (!lane.paused && lane.held.length >= lane.maxHeld) {
            lane.paused = true;
            consumer.pause([{ topic: batch.topic, partitions: [batch.partition] }]);
          }
          if (accepted > 0) void pump(lane);
          options.onBatchDone?.({ topic: batch.topic, partition: batch.partition, lag: lagOf(lane) });
          // The records are handed over; the next fetch waits out the pacing (see `fetchIntervalMs`).
          if (accepted > 0) await paced();
        },
      });
      started = true;
    },
    async stop(drainMs = 10_000) {
      stopping = true;
      clearTimeout(commitTimer);
      if (started) {
        // Fetching stops but the membership stays, so that what finishes while draining can still be committed
        // (kafkajs's `stop()` leaves the group, after which no commit is possible).
        try {
          consumer.pause(options.topics.map((topic) => ({ topic })));
        } catch (error) {
          // kafkajs gave up on the consumer (a crash): nothing is fetching anyway.
          log.warn({ err: error }, 'could not pause the consumer while stopping');
        }
        // Held work and retries are let go now; work in progress gets `drainMs` to finish.
        for (const lane of lanes.values()) lane.abort.abort();
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          Promise.allSettled([...inWork]),
          new Promise((resolve) => (timer = setTimeout(resolve, drainMs))),
        ]);
        clearTimeout(timer);
        await commitNow();
      }
      await consumer.disconnect();
    },
  };
}

/** What `createConsumerRunner` takes: the consumer's options with an outcome handler and its producer. */
export type ConsumerRunnerOptions = Omit<ConsumerOptions, 'ordering' | 'handler' | 'producer'> & {
  handler: ConsumerHandler;
  producer: ReliableProducer;
};

export type ConsumerRunner = KafkaConsumer;

/**
 * {@link createConsumer} with `ordering: 'partition'` (one chunk of a partition at a time, in offset order): the
 * runner the services used before orderings existed, kept for the callers that still call it by this name.
 */
export function createConsumerRunner(options: ConsumerRunnerOptions): ConsumerRunner {
  return createConsumer({ ...options, ordering: 'partition' });
}
