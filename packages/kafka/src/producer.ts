import { type Kafka, type Message, type Producer, type TopicMessages } from 'kafkajs';
import type { Logger } from '@ampflow/observability';
import { DependencyError, ValidationError, createRetryPolicy, retry } from '@ampflow/runtime';
import { REQUEST_HEADROOM_BYTES, createMessageLimits, recordBytes } from './message-limits';
// Side effect: kafkajs's request queue wakes only while requests wait or are in flight (see the module).
import './request-queue-timers';
import { Murmur2Partitioner } from './partitioner';

// Every service produces through this module: stop kafkajs's idle 1 ms timer loop in the whole process.

/** What readiness and the stall watchdog read off a producer. */
export interface ProducerHealth {
  /** The current kafkajs producer is connected and not being replaced. */
  connected: boolean;
  /** Records queued or in flight. */
  pendingRecords: number;
  pendingBytes: number;
  /** How long records have been waiting with no acknowledgement since; 0 while nothing waits. */
  stalledMs: number;
  /** kafkajs producers replaced after a failed request (each replacement has a new producer id). */
  replacements: number;
}

export interface ReliableProducer {
  /** Connects once (gets a producer id); kafkajs reconnects by itself afterwards. */
  connect(): Promise<void>;
  /**
   * Queues records and resolves once the broker acknowledged every one of them with `acks=-1`.
   * kafkajs retries a request while the broker is away, so callers bound their wait with {@link withTimeout}.
   * Rejects with a {@link ValidationError} `record_too_large` (HTTP 413, never retriable) when a record
   * exceeds the topic's `max.message.bytes`, and at once with a retriable {@link DependencyError}
   * `kafka_backlog` when `maxQueuedMessages` or `maxQueuedBytes` are already waiting.
   */
  send(topic: string, messages: Message[]): Promise<void>;
  /** The largest record (key, value and headers, in bytes) that `topic` accepts. */
  messageSizeLimit(topic: string): Promise<number>;
  /** True while the producer holds a broker connection and is not being replaced. */
  isConnected(): boolean;
  health(): ProducerHealth;
  /** Waits up to `drainTimeoutMs` for queued and in-flight batches to settle, then disconnects. */
  disconnect(drainTimeoutMs?: number): Promise<void>;
}

export interface ReliableProducerOptions {
  /** Upper bound on records per produce request (default 1,000). */
  maxBatchMessages?: number;
  /** Produce requests in flight at once (default 1); batches form while earlier ones wait for their ack. */
  maxInFlightBatches?: number;
  /** Records allowed to wait for the broker before `send` refuses new ones (default 20,000). */
  maxQueuedMessages?: number;
  /** Bytes allowed to wait for the broker before `send` refuses new ones (default 64 MiB). */
  maxQueuedBytes?: number;
  /**
   * How long the first record queued while no request is in flight waits for others before its request goes
   * out, in ms (default 0: at once). Records queued while a request is in flight go out when it settles, as
   * they always did; a linger only gathers records that arrive into an idle producer.
   */
  lingerMs?: number;
  /** A lingering request goes out at once when this many bytes of records wait (default 64 KiB). */
  lingerBytes?: number;
  /**
   * Request pacing (default 0: off): a produce request goes out no sooner than this many ms after the previous
   * one went out. A record into a producer that sent nothing for that long goes out at once, so at low rates
   * nothing changes; when records come faster, each request carries what gathered meanwhile (cut short at
   * `lingerBytes` or `maxBatchMessages`). Adds at most this much latency.
   */
  requestIntervalMs?: number;
  logger?: Logger;
}

interface Pending {
  topic: string;
  messages: Message[];
  bytes: number;
  /** Largest request (bytes of records) the topic accepts. */
  requestLimit: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** One kafkajs producer, i.e. one producer id with its own sequence numbers. */
interface Generation {
  producer: Producer;
  connected: boolean;
  inFlight: number;
  retired: boolean;
}

const TOO_LARGE = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE']);

/**
 * An idempotent producer (`acks=-1`) that coalesces concurrent `send` calls into produce requests no larger
 * than the broker takes: a batch is whatever queued while the previous request was in flight, and, with
 * `lingerMs`, what arrives within that time into an idle producer (cut short at `lingerBytes`).
 *
 * Any request that kafkajs gives up on fails every record in it to its callers, and the kafkajs producer is
 * replaced by a new one with a new producer id before anything else is sent. kafkajs rolls back the sequence
 * numbers of every partition of a failed request, including partitions the broker already appended; sending on
 * with that producer gets OUT_OF_ORDER_SEQUENCE_NUMBER forever, or a batch taken for a duplicate and
 * acknowledged without being written (docs/producer.md has the evidence). A new producer id starts clean.
 */
export function createReliableProducer(
  kafka: Kafka,
  options: ReliableProducerOptions = {},
): ReliableProducer {
  const maxBatchMessages = options.maxBatchMessages ?? 1_000;
  const maxInFlightBatches = options.maxInFlightBatches ?? 1;
  const maxQueuedMessages = options.maxQueuedMessages ?? 20_000;
  const maxQueuedBytes = options.maxQueuedBytes ?? 64 * 1024 * 1024;
  const lingerMs = options.lingerMs ?? 0;
  const lingerBytes = options.lingerBytes ?? 64 * 1024;
  const requestIntervalMs = options.requestIntervalMs ?? 0;
  const log = options.logger?.child({ component: 'producer' });
  const limits = createMessageLimits(kafka);
  /** Between attempts to connect a replacement producer while the broker is away. */
  const reconnectPolicy = createRetryPolicy({ baseDelayMs: 200, maxDelayMs: 5_000 });

  const newGeneration = (): Generation => {
    const producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 5,
      // Kafka's default partitioning (murmur2 of the key), computed without kafkajs's Long emulation.
      createPartitioner: Murmur2Partitioner,
      allowAutoTopicCreation: false,
      // kafkajs retries retriable errors (broker away, leader moved) with the same sequence numbers, which the
      // broker dedupes; callers bound their wait. Non-retriable errors end in a replacement (below).
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 100, maxRetryTime: 1_000 },
    });
    const generation: Generation = { producer, connected: false, inFlight: 0, retired: false };
    producer.on(producer.events.CONNECT, () => (generation.connected = true));
    producer.on(producer.events.DISCONNECT, () => (generation.connected = false));
    return generation;
  };

  let current = newGeneration();
  let replacing: Promise<void> | undefined;
  let replacements = 0;
  let closed = false;
  const queue: Pending[] = [];
  /** Records and bytes accepted by `send` and not yet settled (queued, in flight, or awaiting a limit). */
  let pendingRecords = 0;
  let pendingBytes = 0;
  let inFlight = 0;
  let waitingSince = 0;
  let idle: (() => void) | undefined;
  /** Bytes and records in `queue` (not yet handed to kafkajs). */
  let queuedBytes = 0;
  let queuedRecords = 0;
  /** The linger of the records queued into an idle producer; `lingerDone` once it ran out (or was cut short). */
  let lingerTimer: NodeJS.Timeout | undefined;
  let lingerDone = false;
  let draining = false;
  /** When the last produce request went out, and the timer of a paced one (see `requestIntervalMs`). */
  let lastRequestAt = 0;
  let paceTimer: NodeJS.Timeout | undefined;

  function takeBatch(): Pending[] {
    const batch: Pending[] = [];
    let count = 0;
    let bytes = 0;
    let requestLimit = Number.POSITIVE_INFINITY;
    while (queue.length > 0) {
      const next = queue[0]!;
      const limit = Math.min(requestLimit, next.requestLimit);
      const fits = count + next.messages.length <= maxBatchMessages && bytes + next.bytes <= limit;
      if (batch.length > 0 && !fits) break;
      queue.shift();
      batch.push(next);
      count += next.messages.length;
      bytes += next.bytes;
      queuedRecords -= next.messages.length;
      queuedBytes -= next.bytes;
      requestLimit = limit;
    }
    return batch;
  }

  /**
   * Whether the queue should wait for more records: only with a linger, only while nothing is in flight (a
   * request in flight is a linger already), and until the linger ran out or a request's worth of bytes or
   * records is waiting.
   */
  function lingering(): boolean {
    if (draining || queuedBytes >= lingerBytes || queuedRecords >= maxBatchMessages) return false;
    if (requestIntervalMs > 0) {
      const waitMs = lastRequestAt + requestIntervalMs - Date.now();
      if (waitMs > 0) {
        paceTimer ??= setTimeout(() => {
          paceTimer = undefined;
          pump();
        }, waitMs);
        return true;
      }
    }
    if (lingerMs <= 0 || lingerDone || inFlight > 0) return false;
    lingerTimer ??= setTimeout(() => {
      lingerTimer = undefined;
      lingerDone = true;
      pump();
    }, lingerMs);
    return true;
  }

  function pump(): void {
    while (!replacing && !closed && inFlight < maxInFlightBatches && queue.length > 0) {
      if (lingering()) break;
      const batch = takeBatch();
      if (queue.length === 0) {
        // The next record into an idle producer starts a new linger.
        lingerDone = false;
        clearTimeout(lingerTimer);
        lingerTimer = undefined;
      }
      const byTopic = new Map<string, Message[]>();
      for (const p of batch) {
        const list = byTopic.get(p.topic);
        if (list) list.push(...p.messages);
        else byTopic.set(p.topic, [...p.messages]);
      }
      const topicMessages: TopicMessages[] = [...byTopic].map(([topic, messages]) => ({ topic, messages }));
      const generation = current;
      generation.inFlight += 1;
      inFlight += 1;
      lastRequestAt = Date.now();
      generation.producer.sendBatch({ topicMessages, acks: -1 }).then(
        () => settle(generation, batch, undefined),
        (err: unknown) => settle(generation, batch, err),
      );
    }
    if (inFlight === 0 && queue.length === 0) idle?.();
  }

  function settle(generation: Generation, batch: Pending[], error: unknown): void {
    generation.inFlight -= 1;
    inFlight -= 1;
    for (const p of batch) {
      pendingRecords -= p.messages.length;
      pendingBytes -= p.bytes;
    }
    if (error === undefined) {
      waitingSince = pendingRecords > 0 ? Date.now() : 0;
      for (const p of batch) p.resolve();
    } else {
      const type = (error as { type?: string }).type ?? (error as Error).name;
      if (TOO_LARGE.has(type)) for (const p of batch) limits.invalidate(p.topic);
      const failure = new DependencyError(
        'kafka_unavailable',
        `Kafka did not acknowledge the records (${type})`,
        {
          cause: error,
        },
      );
      for (const p of batch) p.reject(failure);
      if (pendingRecords === 0) waitingSince = 0;
      if (generation === current && !closed) replace(type, error);
    }
    if (generation.retired && generation.inFlight === 0)
      void generation.producer.disconnect().catch(() => {});
    pump();
  }

  /** Swaps in a new kafkajs producer (new producer id, sequences from 0); nothing is sent until it connects. */
  function replace(reason: string, error: unknown): void {
    const old = current;
    old.retired = true;
    current = newGeneration();
    replacements += 1;
    log?.warn({ err: error, reason, replacements }, 'produce request failed; replacing the producer');
    if (old.inFlight === 0) void old.producer.disconnect().catch(() => {});
    replacing = retry(() => current.producer.connect(), {
      policy: reconnectPolicy,
      shouldRetry: () => true,
      isStopped: () => closed,
      onRetry: ({ error: err, delayMs }) =>
        log?.warn({ err, delayMs }, 'replacement producer could not connect; retrying'),
    })
      // Only a close ends the retries; the producer is then closed anyway.
      .catch(() => undefined)
      .finally(() => {
        replacing = undefined;
        pump();
      });
  }

  function enqueue(topic: string, messages: Message[], sizes: number[], requestLimit: number): Promise<void> {
    // Split into pieces that fit one request each; the caller's promise settles when every piece has.
    const pieces: Promise<void>[] = [];
    let start = 0;
    while (start < messages.length) {
      let end = start;
      let bytes = 0;
      while (
        end < messages.length &&
        end - start < maxBatchMessages &&
        (end === start || bytes + sizes[end]! <= requestLimit)
      ) {
        bytes += sizes[end]!;
        end += 1;
      }
      const piece = messages.slice(start, end);
      const count = piece.length;
      pieces.push(
        new Promise<void>((resolve, reject) =>
          queue.push({ topic, messages: piece, bytes, requestLimit, resolve, reject }),
        ),
      );
      queuedRecords += count;
      queuedBytes += bytes;
      start = end;
    }
    // Records queued behind a request in flight have waited for it: they go out when it settles.
    if (inFlight > 0) lingerDone = true;
    queueMicrotask(pump);
    return pieces.length === 1 ? pieces[0]! : Promise.all(pieces).then(() => undefined);
  }

  return {
    connect: () => current.producer.connect(),
    isConnected: () => current.connected && !replacing,
    messageSizeLimit: async (topic) => (await limits.maxMessageBytes(topic)) - REQUEST_HEADROOM_BYTES,
    health: () => ({
      connected: current.connected && !replacing,
      pendingRecords,
      pendingBytes,
      stalledMs: pendingRecords > 0 && waitingSince > 0 ? Date.now() - waitingSince : 0,
      replacements,
    }),
    async send(topic, messages) {
      if (closed) throw new DependencyError('producer_closed', 'the producer is shutting down');
      if (messages.length === 0) return;
      const sizes = messages.map(recordBytes);
      const bytes = sizes.reduce((a, b) => a + b, 0);
      if (
        pendingRecords > 0 &&
        (pendingRecords + messages.length > maxQueuedMessages || pendingBytes + bytes > maxQueuedBytes)
      ) {
        throw new DependencyError(
          'kafka_backlog',
          `${pendingRecords} records (${pendingBytes} bytes) are already waiting for Kafka`,
        );
      }
      pendingRecords += messages.length;
      pendingBytes += bytes;
      if (waitingSince === 0) waitingSince = Date.now();
      let requestLimit: number;
      try {
        requestLimit = (await limits.maxMessageBytes(topic)) - REQUEST_HEADROOM_BYTES;
        const largest = Math.max(...sizes);
        if (largest > requestLimit) {
          throw new ValidationError(
            'record_too_large',
            `a record of ${largest} bytes exceeds what ${topic} accepts (${requestLimit} bytes)`,
            { httpStatus: 413 },
          );
        }
        if (closed) throw new DependencyError('producer_closed', 'the producer is shutting down');
      } catch (err) {
        pendingRecords -= messages.length;
        pendingBytes -= bytes;
        if (pendingRecords === 0) waitingSince = 0;
        throw err;
      }
      return enqueue(topic, messages, sizes, requestLimit);
    },
    async disconnect(drainTimeoutMs = 10_000) {
      // Queued records go out now, without waiting for their linger.
      draining = true;
      pump();
      if (inFlight > 0 || queue.length > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          new Promise<void>((resolve) => (idle = resolve)),
          new Promise<void>((resolve) => (timer = setTimeout(resolve, drainTimeoutMs))),
        ]);
        clearTimeout(timer);
      }
      closed = true;
      clearTimeout(lingerTimer);
      lingerTimer = undefined;
      clearTimeout(paceTimer);
      paceTimer = undefined;
      for (const p of queue.splice(0)) {
        queuedRecords -= p.messages.length;
        queuedBytes -= p.bytes;
        pendingRecords -= p.messages.length;
        pendingBytes -= p.bytes;
        p.reject(new DependencyError('producer_closed', 'the producer is shutting down'));
      }
      await replacing;
      await Promise.all([current.producer.disconnect(), limits.close()]);
    },
  };
}

// Moved to @ampflow/runtime's errors module; kept here because broker-probe.ts imports it from this file.
export { withTimeout } from '@ampflow/runtime';
