import { Partitioners, type Kafka, type Message, type Producer, type TopicMessages } from 'kafkajs';
import { DependencyError } from '@ampflow/runtime';

export interface ReliableProducer {
  /** Connects once; kafkajs reconnects by itself afterwards. */
  connect(): Promise<void>;
  /**
   * Queues records for the next batch and resolves once the broker acknowledged them with `acks=-1`.
   * kafkajs retries an unacknowledged batch until the broker takes it (an idempotent producer must not give
   * up half way), so callers bound their wait with {@link withTimeout}. Rejects at once with a retriable
   * {@link DependencyError} when `maxQueuedMessages` are already waiting (the broker is down or slow).
   */
  send(topic: string, messages: Message[]): Promise<void>;
  /** True while the producer holds a broker connection. */
  isConnected(): boolean;
  /** Waits up to `drainTimeoutMs` for queued and in-flight batches to settle, then disconnects. */
  disconnect(drainTimeoutMs?: number): Promise<void>;
  readonly raw: Producer;
}

export interface ReliableProducerOptions {
  /** Upper bound on records per produce request. */
  maxBatchMessages?: number;
  /** Produce requests in flight at once; batches form while earlier ones wait for their acknowledgement. */
  maxInFlightBatches?: number;
  /** Records allowed to wait for the broker before `send` refuses new ones. */
  maxQueuedMessages?: number;
}

interface Pending {
  topic: string;
  messages: Message[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * An idempotent producer (no duplicates from its own retries) with `acks=-1` that coalesces concurrent
 * `send` calls into one produce request: no linger timer, the batch is whatever queued while the previous
 * request was in flight, so a lone record goes out at once and a burst shares one round trip.
 */
export function createReliableProducer(
  kafka: Kafka,
  options: ReliableProducerOptions = {},
): ReliableProducer {
  const maxBatchMessages = options.maxBatchMessages ?? 1_000;
  const maxInFlightBatches = options.maxInFlightBatches ?? 1;
  const maxQueuedMessages = options.maxQueuedMessages ?? 20_000;
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 5,
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
    // Unbounded retries are what keeps an idempotent producer's sequence numbers valid; callers time out.
    retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 100, maxRetryTime: 1_000 },
  });
  let connected = false;
  producer.on(producer.events.CONNECT, () => {
    connected = true;
  });
  producer.on(producer.events.DISCONNECT, () => {
    connected = false;
  });

  const queue: Pending[] = [];
  let queuedMessages = 0;
  let inFlight = 0;
  let idle: (() => void) | undefined;

  function takeBatch(): Pending[] {
    const batch: Pending[] = [];
    let count = 0;
    while (
      queue.length > 0 &&
      (batch.length === 0 || count + queue[0]!.messages.length <= maxBatchMessages)
    ) {
      const next = queue.shift()!;
      count += next.messages.length;
      queuedMessages -= next.messages.length;
      batch.push(next);
    }
    return batch;
  }

  function pump(): void {
    while (inFlight < maxInFlightBatches && queue.length > 0) {
      const batch = takeBatch();
      const byTopic = new Map<string, Message[]>();
      for (const p of batch) {
        const list = byTopic.get(p.topic);
        if (list) list.push(...p.messages);
        else byTopic.set(p.topic, [...p.messages]);
      }
      const topicMessages: TopicMessages[] = [...byTopic].map(([topic, messages]) => ({ topic, messages }));
      inFlight += 1;
      producer.sendBatch({ topicMessages, acks: -1 }).then(
        () => settle(batch, undefined),
        (err: unknown) =>
          settle(
            batch,
            new DependencyError('kafka_unavailable', 'Kafka did not acknowledge the records', { cause: err }),
          ),
      );
    }
    if (inFlight === 0 && queue.length === 0) idle?.();
  }

  function settle(batch: Pending[], error: DependencyError | undefined): void {
    inFlight -= 1;
    for (const p of batch) {
      if (error) p.reject(error);
      else p.resolve();
    }
    pump();
  }

  return {
    raw: producer,
    connect: () => producer.connect(),
    isConnected: () => connected,
    send(topic, messages) {
      if (queuedMessages + messages.length > maxQueuedMessages) {
        return Promise.reject(
          new DependencyError('kafka_backlog', `${queuedMessages} records are already waiting for Kafka`),
        );
      }
      return new Promise<void>((resolve, reject) => {
        queue.push({ topic, messages, resolve, reject });
        queuedMessages += messages.length;
        if (inFlight < maxInFlightBatches) queueMicrotask(pump);
      });
    },
    async disconnect(drainTimeoutMs = 10_000) {
      if (inFlight > 0 || queue.length > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          new Promise<void>((resolve) => (idle = resolve)),
          new Promise<void>((resolve) => (timer = setTimeout(resolve, drainTimeoutMs))),
        ]);
        clearTimeout(timer);
      }
      const abandoned = queue.splice(0);
      queuedMessages = 0;
      for (const p of abandoned)
        p.reject(new DependencyError('producer_closed', 'the producer is shutting down'));
      await producer.disconnect();
    },
  };
}

/**
 * Resolves or rejects like `promise`, but rejects with a retriable {@link DependencyError} `code` once
 * `timeoutMs` passes first. The underlying work is not cancelled: callers that care attach to `promise`.
 */
export async function withTimeout<T>(
  promise: Promise<T>,
  timeoutMs: number,
  code: string,
  what: string,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DependencyError(code, `${what} within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
