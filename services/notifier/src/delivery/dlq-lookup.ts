import { randomBytes } from 'node:crypto';
import type { Admin, Consumer, IHeaders, Kafka, KafkaMessage } from 'kafkajs';
import { fetchTopicOffsetsWhenReady, isCaughtUp, readTargets, subscribeWhenReady } from '@ampflow/kafka';
import type { Logger } from '@ampflow/observability';
import { DependencyError, every, withTimeout, type Periodic } from '@ampflow/runtime';
import { createDeadLetterIndex, type LowWatermarks } from './dlq-index';
import { readDeadLetter, scanDeadLetters, type DeadLetterRecord } from './dlq-scan';
import { DeliveryDlqHeaders } from './durable-writer';

/**
 * Finds a message's dead letters in the deliveries DLQ in time independent of the DLQ's size: an in-memory
 * {@link createDeadLetterIndex} of positions, and a reader that fetches the records at those positions.
 */
export interface DeadLetterLookup {
  /** Starts the tail (which reads the DLQ from its first stored record on) and the reader. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** True once the tail has read the DLQ up to where it ended at `start`. */
  caughtUp(): boolean;
  /**
   * The dead letters of `messageId` (only `endpointId`'s when given) in the DLQ as it is at the call, the
   * latest per endpoint: first waits for the tail to reach the DLQ's current end, so a dead letter written
   * just before by any instance is found. Rejects with a retriable {@link DependencyError} (503) when Kafka
   * does not answer, or the tail is still that far behind, within `timeoutMs`. A message the index does not
   * know while it holds `maxPositions` (it dropped older ones) is looked for by a scan of the whole DLQ.
   */
  find(messageId: string, endpointId?: string): Promise<DeadLetterRecord[]>;
  /** Positions indexed. */
  readonly size: number;
}

export interface DeadLetterLookupOptions {
  kafka: Kafka;
  /** The deliveries DLQ (`<prefix>ev.webhook-deliveries.dlq`); it must exist before `start`. */
  topic: string;
  logger: Logger;
  /** Called when the tail or the reader dies for good (kafkajs will not restart it); the service exits. */
  onFatal: (error: unknown) => void;
  /** Bound of one `find`: waiting for the tail plus the reads (ms, default 10,000). */
  timeoutMs?: number;
  /** How often positions of records removed by retention are dropped (ms, default 10 min). */
  pruneIntervalMs?: number;
  /**
   * Positions held at most (default 500,000, about 80 MiB); past it the oldest go, and a message the index
   * does not know is then looked for by reading the DLQ from its start, as before the index.
   */
  maxPositions?: number;
}

const header = (headers: IHeaders | undefined, name: string): string | undefined => {
  const value = headers?.[name];
  if (value === undefined) return undefined;
  return (Array.isArray(value) ? value[0] : value)?.toString();
};

/**
 * Two consumers, each alone in a throwaway group of its own (kafkajs has no manual assignment), never
 * committing, deleted at `stop` (and dropped by the broker after a crash), as the endpoints table reads:
 *
 * - the **tail** reads the DLQ from its first stored record and keeps reading, adding the position of every
 *   delivery's dead letter to the index. Every instance holds the whole index and rebuilds it at each start
 *   from the DLQ itself, so nothing is lost with Redis or a restart, and no instance depends on another.
 * - the **reader** stays paused; a `find` seeks it to each position and takes the one record there. It joins
 *   its group once at start, so a lookup costs a fetch, not a group join.
 *
 * The index follows the DLQ's retention (30 days in `deploy/k8s`): positions below a partition's first stored
 * offset are dropped when found and every `pruneIntervalMs`. It is bounded by `maxPositions`; a DLQ with more
 * dead letters than that keeps the newest indexed, and the older ones are found by a scan, as before.
 */
export function createDeadLetterLookup(options: DeadLetterLookupOptions): DeadLetterLookup {
  const { kafka, topic } = options;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const suffix = randomBytes(6).toString('hex');
  const tailGroup = `${topic}-index-${suffix}`;
  const readerGroup = `${topic}-reader-${suffix}`;
  const log = options.logger.child({ component: 'dlq-lookup', topic });
  const index = createDeadLetterIndex({ maxPositions: options.maxPositions });

  /** Per partition, the offset after the last record the tail applied. */
  const positions = new Map<number, number>();
  let startTargets: Map<number, number> | undefined;
  let caughtUp = false;
  const waiters = new Set<{ targets: Map<number, number>; resolve: () => void }>();
  let phase: 'new' | 'starting' | 'running' | 'stopped' = 'new';
  let starting: Promise<void> | undefined;
  let admin: Admin | undefined;
  let tail: Consumer | undefined;
  let reader: Consumer | undefined;
  let pruning: Periodic | undefined;

  function advance(partition: number, nextOffset: number): void {
    if (nextOffset <= (positions.get(partition) ?? 0)) return;
    positions.set(partition, nextOffset);
    if (!caughtUp && startTargets && isCaughtUp(startTargets, positions)) {
      caughtUp = true;
      log.info({ positions: index.size }, 'DLQ index caught up with the DLQ');
    }
    for (const waiter of waiters) {
      if (isCaughtUp(waiter.targets, positions)) {
        waiters.delete(waiter);
        waiter.resolve();
      }
    }
  }

  function apply(partition: number, message: KafkaMessage): void {
    const offset = Number(message.offset);
    if (offset < (positions.get(partition) ?? 0)) return; // a replay after kafkajs restarted the tail
    const messageId = header(message.headers, DeliveryDlqHeaders.messageId);
    const endpointId = header(message.headers, DeliveryDlqHeaders.endpointId);
    // Records without them are unreadable source records, not deliveries: nothing to re-send by message id.
    if (messageId && endpointId) index.add(messageId, endpointId, partition, offset);
    advance(partition, offset + 1);
  }

  function onCrash(name: string, consumer: Consumer): void {
    consumer.on(consumer.events.CRASH, (event) => {
      const { error, restart } = event.payload;
      if (restart) {
        log.warn({ err: error }, `DLQ ${name} crashed; kafkajs restarts it`);
        return;
      }
      log.error({ err: error }, `DLQ ${name} crashed and will not restart`);
      if (phase !== 'stopped') options.onFatal(error);
    });
  }

  async function offsets(): Promise<{ targets: Map<number, number>; lows: LowWatermarks }> {
    const partitions = await fetchTopicOffsetsWhenReady(admin!, topic);
    return {
      targets: readTargets(partitions),
      lows: new Map(partitions.map((p) => [p.partition, Number(p.low)])),
    };
  }

  async function startTail(): Promise<void> {
    startTargets = (await offsets()).targets;
    if (isCaughtUp(startTargets, positions)) caughtUp = true;
    const consumer = kafka.consumer({
      groupId: tailGroup,
      // A fetch returns as soon as a dead letter arrives, so a long wait costs no freshness; it only makes an
      // idle notifier send fewer empty fetches and heartbeats (one each per 3 s instead of two per second).
      maxWaitTimeInMs: 3_000,
      sessionTimeout: 10_000,
      heartbeatInterval: 3_000,
      allowAutoTopicCreation: false,
      retry: { retries: 10, initialRetryTime: 300, maxRetryTime: 10_000 },
    });
    tail = consumer;
    onCrash('tail', consumer);
    // Offsets with no record for us (batches made only of control records) still move the position.
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      if (payload.topic === topic && payload.batchSize === 0)
        advance(payload.partition, Number(payload.lastOffset) + 1);
    });
    await consumer.connect();
    await subscribeWhenReady(consumer, { topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch, isRunning, isStale, heartbeat }) => {
        for (const message of batch.messages) {
          if (!isRunning() || isStale()) return;
          apply(batch.partition, message);
        }
        advance(batch.partition, Number(batch.lastOffset()) + 1);
        await heartbeat();
      },
    });
  }

  /** The record the reader is fetching, at most one at a time. */
  let wanted: { partition: number; offset: string; resolve: (message: KafkaMessage) => void } | undefined;
  let readChain: Promise<unknown> = Promise.resolve();

  function pauseReader(): void {
    reader?.pause([{ topic }]);
  }

  function aimReader(): void {
    if (!reader || !wanted) return;
    reader.seek({ topic, partition: wanted.partition, offset: wanted.offset });
    reader.resume([{ topic, partitions: [wanted.partition] }]);
  }

  async function startReader(): Promise<void> {
    const consumer = kafka.consumer({
      groupId: readerGroup,
      // While paused, kafkajs's fetch loop sleeps this long between looks at the assignment, so it bounds how
      // long a seek waits to be fetched; the loop costs next to nothing (no request goes out while paused).
      // 100 ms: 10 looks a second while idle (20 ms was 50), at most 0.1 s more per lookup.
      maxWaitTimeInMs: 100,
      // One record is wanted; a fetch still returns at least one whole batch when that is larger.
      maxBytesPerPartition: 64 * 1024,
      sessionTimeout: 10_000,
      heartbeatInterval: 3_000,
      allowAutoTopicCreation: false,
      retry: { retries: 10, initialRetryTime: 300, maxRetryTime: 10_000 },
    });
    reader = consumer;
    onCrash('reader', consumer);
    // A restarted consumer (or a rebalance) starts unpaused and without the pending seek: set both again.
    consumer.on(consumer.events.GROUP_JOIN, () => {
      pauseReader();
      aimReader();
    });
    await consumer.connect();
    // From the end: until a read seeks it somewhere, it has nothing to fetch.
    await subscribeWhenReady(consumer, { topics: [topic], fromBeginning: false });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const target = wanted;
        if (!target || batch.partition !== target.partition) return;
        // Any batch that holds the offset will do (records do not change): one fetched before the seek too.
        const message = batch.messages.find((m) => m.offset === target.offset);
        if (!message) return;
        wanted = undefined;
        pauseReader();
        target.resolve(message);
      },
    });
    pauseReader();
  }

  /** The record at `partition`/`offset`; one read at a time, each bounded by `deadline`. */
  function readAt(partition: number, offset: number, deadline: number): Promise<KafkaMessage> {
    const read = readChain.then(async () => {
      const got = new Promise<KafkaMessage>((resolve) => {
        wanted = { partition, offset: String(offset), resolve };
      });
      aimReader();
      try {
        return await withTimeout(
          got,
          Math.max(1, deadline - Date.now()),
          'dlq_read_timeout',
          `the dead letter at ${topic}/${partition}/${offset} was not read in time`,
        );
      } finally {
        if (wanted?.offset === String(offset) && wanted.partition === partition) {
          wanted = undefined;
          pauseReader();
        }
      }
    });
    readChain = read.catch(() => undefined);
    return read;
  }

  function reach(targets: Map<number, number>, deadline: number): Promise<void> {
    if (isCaughtUp(targets, positions)) return Promise.resolve();
    let waiter: { targets: Map<number, number>; resolve: () => void } | undefined;
    const reached = new Promise<void>((resolve) => {
      waiter = { targets, resolve };
      waiters.add(waiter);
    });
    return withTimeout(
      reached,
      Math.max(1, deadline - Date.now()),
      'dead_letters_loading',
      'the DLQ index is still reading the DLQ; try again shortly',
    ).finally(() => waiters.delete(waiter!));
  }

  async function prune(): Promise<void> {
    const dropped = index.prune((await offsets()).lows);
    if (dropped > 0)
      log.info({ dropped, positions: index.size }, 'dropped dead letters removed by retention');
  }

  async function deleteGroups(): Promise<void> {
    const cleanup = kafka.admin({ retry: { retries: 2 } });
    try {
      await withTimeout(
        cleanup.connect().then(() => cleanup.deleteGroups([tailGroup, readerGroup])),
        5_000,
        'kafka_unavailable',
        'the DLQ lookup groups were not deleted',
      );
    } catch (err) {
      // The broker drops empty groups without offsets by itself later; this only saves it the wait.
      log.warn({ err }, 'could not delete the DLQ lookup groups');
    } finally {
      await cleanup.disconnect().catch(() => undefined);
    }
  }

  return {
    async start() {
      if (phase !== 'new') throw new Error('the dead-letter lookup was already started');
      phase = 'starting';
      starting = (async () => {
        admin = kafka.admin();
        await admin.connect();
        await Promise.all([startTail(), startReader()]);
        pruning = every(options.pruneIntervalMs ?? 10 * 60_000, prune, {
          onError: (err) => log.warn({ err }, 'could not prune the DLQ index'),
        });
        if (phase === 'starting') phase = 'running';
      })();
      return starting;
    },

    async stop() {
      const wasStarted = phase !== 'new';
      phase = 'stopped';
      if (!wasStarted) return;
      await starting?.catch(() => undefined);
      await pruning?.stop();
      await Promise.all([tail?.disconnect(), reader?.disconnect()]);
      await deleteGroups();
      await admin?.disconnect();
    },

    caughtUp: () => caughtUp,

    async find(messageId, endpointId) {
      const deadline = Date.now() + timeoutMs;
      if (phase === 'starting')
        await withTimeout(
          starting!,
          timeoutMs,
          'dead_letters_loading',
          'the dead-letter lookup did not start',
        );
      if (phase !== 'running')
        throw new DependencyError('dlq_lookup_not_running', 'the dead-letter lookup is not running');
      const { targets, lows } = await withTimeout(
        offsets(),
        timeoutMs,
        'kafka_unavailable',
        'Kafka did not give the DLQ offsets',
      );
      await reach(targets, deadline);
      const positions = index.find(messageId, endpointId, lows);
      if (positions.length === 0 && index.evicted > 0) {
        // The index outgrew its bound and dropped its oldest positions: this message may be among them.
        log.info({ evicted: index.evicted }, 'message not in the bounded DLQ index; reading the DLQ');
        return scanDeadLetters({
          kafka,
          topic,
          sinceMs: 0,
          keep: (r) => r.messageId === messageId && (endpointId === undefined || r.endpointId === endpointId),
          logger: options.logger,
        });
      }
      const found: DeadLetterRecord[] = [];
      for (const position of positions) {
        const record = readDeadLetter(await readAt(position.partition, position.offset, deadline));
        if (record) found.push(record);
      }
      return found;
    },

    get size() {
      return index.size;
    },
  };
}
