import type { Consumer, IHeaders, Kafka, KafkaMessage, Message } from 'kafkajs';
import { AppError } from '@ampflow/runtime';
import { DeadLetterHeaders, dlqTopic } from '@ampflow/contracts';
import type { Logger } from '@ampflow/observability';
import type { ReliableProducer } from './producer';
import { subscribeWhenReady } from './topics-admin';

export interface ConsumedRecord {
  topic: string;
  partition: number;
  message: KafkaMessage;
}

/** A record the runner produces on the handler's behalf, with the runner's producer. */
export interface OutputRecord {
  topic: string;
  message: Message;
}

/**
 * Handles one record and returns the records to produce for it (or nothing); throws to say "try again".
 * An {@link AppError} with `retriable: false` means the record can never succeed: it is dead-lettered.
 * The runner sends the outputs of a chunk of records together and commits the chunk's offsets only after
 * they are acknowledged, so handlers must be idempotent: a chunk that failed runs again.
 */
export type RecordHandler = (record: ConsumedRecord) => Promise<OutputRecord[] | void>;

export type RecordOutcome = 'ok' | 'dead_lettered';

/**
 * Handles a whole chunk of one partition's records at once (for handlers that batch their own I/O).
 * `deadLetters` name the records (by index) that can never succeed; `afterSend` runs once the outputs are
 * acknowledged and before the offsets are resolved (e.g. to persist state). Throw to retry the chunk.
 */
export type ChunkHandler = (records: ConsumedRecord[]) => Promise<{
  outputs: OutputRecord[];
  deadLetters?: Array<{ index: number; error: unknown }>;
  afterSend?: () => Promise<void>;
}>;

export interface ConsumerRunnerOptions {
  kafka: Kafka;
  groupId: string;
  topics: string[];
  fromBeginning?: boolean;
  /** Exactly one of `handler` (per record) and `chunkHandler` (per chunk). */
  handler?: RecordHandler;
  chunkHandler?: ChunkHandler;
  /** Produces the handlers' outputs and the dead letters (`<topic>.dlq`); without it nothing is dead-lettered. */
  producer?: ReliableProducer;
  logger: Logger;
  /** Records handled before their outputs are sent together (default 500). */
  maxChunkRecords?: number;
  /**
   * Partitions handled at once (default 3). Order within a partition is kept; chunks of different
   * partitions overlap their waits for Kafka and share produce requests.
   */
  partitionsConsumedConcurrently?: number;
  /** Backoff between retries of a failing chunk: doubles from `initialRetryMs` up to `maxRetryMs`. */
  initialRetryMs?: number;
  maxRetryMs?: number;
  /**
   * Consumer group session timeout (default 10 s): how long the group waits for a member that stopped
   * heartbeating (a SIGKILLed process) before its partitions move. Heartbeats go every second.
   */
  sessionTimeoutMs?: number;
  /**
   * How long one chunk may keep failing before the runner gives up and calls `onFatal` (default 5 min): past
   * that the process is assumed stuck in a state it cannot leave and is better restarted by its supervisor.
   */
  maxFailingMs?: number;
  /**
   * Called when the consumer cannot go on by itself: kafkajs gave up on it (a CRASH without restart), or a chunk
   * kept failing for `maxFailingMs`. Services stop and exit non-zero so that a supervisor restarts them.
   */
  onFatal: (error: unknown) => void;
  /** Called for each record once its outputs (or its dead letter) are acknowledged. */
  onRecordDone?: (record: ConsumedRecord, outcome: RecordOutcome, error?: unknown) => void;
  /** Called after a fetched batch is done, with the records still behind the partition's high watermark. */
  onBatchDone?: (info: { topic: string; partition: number; lag: number }) => void;
}

export interface ConsumerRunner {
  start(): Promise<void>;
  /** Finishes the chunk in hand, commits, leaves the group. */
  stop(): Promise<void>;
  /** True while the consumer is a member of its group. */
  isRunning(): boolean;
  health(): ConsumerHealth;
  readonly consumer: Consumer;
}

/** What readiness reads off a consumer runner. */
export interface ConsumerHealth {
  /** A member of its group, consuming. */
  running: boolean;
  /** How long the chunk in hand has been failing (retried); 0 when none is. */
  failingMs: number;
  /** Epoch ms of the last chunk done or fetch that found nothing to do; 0 before the first. */
  lastProgressAt: number;
}

export function isPermanentFailure(error: unknown): boolean {
  return error instanceof AppError && !error.retriable;
}

/** Headers of a dead-lettered record: the original ones plus the reason and the source position. */
export function deadLetterHeaders(record: ConsumedRecord, error: unknown, now: Date): IHeaders {
  const code = error instanceof AppError ? error.code : 'unexpected_error';
  const message = error instanceof Error ? error.message : String(error);
  return {
    ...(record.message.headers ?? {}),
    [DeadLetterHeaders.errorCode]: code,
    [DeadLetterHeaders.errorMessage]: message.slice(0, 1_000),
    [DeadLetterHeaders.failedAt]: now.toISOString(),
    [DeadLetterHeaders.sourceTopic]: record.topic,
    [DeadLetterHeaders.sourcePartition]: String(record.partition),
    [DeadLetterHeaders.sourceOffset]: record.message.offset,
  };
}

/**
 * The one consumer runner: per-partition order; a chunk of records is handled, its outputs and dead letters
 * sent in one go, and only then are its offsets resolved (at-least-once). Retriable failures are retried
 * with backoff while heartbeating; permanent ones go to `<topic>.dlq` and processing continues.
 */
export function createConsumerRunner(options: ConsumerRunnerOptions): ConsumerRunner {
  if (!options.handler === !options.chunkHandler)
    throw new Error('give the consumer runner a handler or a chunkHandler');
  const log = options.logger.child({ component: 'consumer', groupId: options.groupId });
  const initialRetryMs = options.initialRetryMs ?? 200;
  const maxRetryMs = options.maxRetryMs ?? 10_000;
  const maxChunkRecords = options.maxChunkRecords ?? 500;
  const maxFailingMs = options.maxFailingMs ?? 5 * 60_000;
  const consumer = options.kafka.consumer({
    groupId: options.groupId,
    sessionTimeout: options.sessionTimeoutMs ?? 10_000,
    heartbeatInterval: 1_000,
    // Bounds an idle fetch; a fetch returns at once when records are there.
    maxWaitTimeInMs: 1_000,
    allowAutoTopicCreation: false,
    retry: { retries: 10, initialRetryTime: 300, maxRetryTime: 10_000 },
  });
  let running = false;
  let stopping = false;
  let failingSince = 0;
  let lastProgressAt = 0;

  consumer.on(consumer.events.GROUP_JOIN, () => {
    running = true;
    lastProgressAt = Date.now();
  });
  consumer.on(consumer.events.FETCH, () => {
    if (failingSince === 0) lastProgressAt = Date.now();
  });
  consumer.on(consumer.events.STOP, () => {
    running = false;
  });
  // kafkajs restarts the consumer itself after a retriable crash (restart: true); after any other it stays
  // stopped for good, which without this would look alive while consuming nothing.
  consumer.on(consumer.events.CRASH, (event) => {
    running = false;
    const { error, restart } = event.payload;
    if (restart) {
      log.warn({ err: error }, 'consumer crashed; kafkajs restarts it');
      return;
    }
    log.error({ err: error }, 'consumer crashed and will not restart');
    if (!stopping) options.onFatal(error);
  });

  async function send(outputs: OutputRecord[]): Promise<void> {
    if (outputs.length === 0) return;
    const byTopic = new Map<string, Message[]>();
    for (const { topic, message } of outputs) {
      const list = byTopic.get(topic);
      if (list) list.push(message);
      else byTopic.set(topic, [message]);
    }
    const producer = options.producer;
    if (!producer) throw new Error('the consumer runner needs a producer to send outputs');
    await Promise.all([...byTopic].map(([topic, messages]) => producer.send(topic, messages)));
  }

  function deadLetterOutput(record: ConsumedRecord, error: unknown): OutputRecord {
    log.warn(
      { err: error, topic: record.topic, partition: record.partition, offset: record.message.offset },
      'dead-lettering a record that can never succeed',
    );
    const { key, value } = record.message;
    return {
      topic: dlqTopic(record.topic),
      message: { key, value, headers: deadLetterHeaders(record, error, new Date()) },
    };
  }

  type Outcomes = Array<{ outcome: RecordOutcome; error?: unknown }>;

  /** Handles a chunk and sends everything it produced; throws (to retry the chunk) on a retriable failure. */
  async function processChunk(records: ConsumedRecord[]): Promise<Outcomes> {
    const outputs: OutputRecord[] = [];
    const outcomes: Outcomes = records.map(() => ({ outcome: 'ok' }));
    let afterSend: (() => Promise<void>) | undefined;
    if (options.chunkHandler) {
      const result = await options.chunkHandler(records);
      outputs.push(...result.outputs);
      for (const { index, error } of result.deadLetters ?? []) {
        if (!options.producer) throw error;
        outputs.push(deadLetterOutput(records[index]!, error));
        outcomes[index] = { outcome: 'dead_lettered', error };
      }
      afterSend = result.afterSend;
    } else {
      for (const [index, record] of records.entries()) {
        try {
          const produced = await options.handler!(record);
          if (produced) outputs.push(...produced);
        } catch (error) {
          if (!isPermanentFailure(error) || !options.producer) throw error;
          outputs.push(deadLetterOutput(record, error));
          outcomes[index] = { outcome: 'dead_lettered', error };
        }
      }
    }
    await send(outputs);
    await afterSend?.();
    return outcomes;
  }

  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  return {
    consumer,
    isRunning: () => running,
    health: () => ({
      running,
      failingMs: failingSince === 0 ? 0 : Date.now() - failingSince,
      lastProgressAt,
    }),
    async start() {
      await consumer.connect();
      await subscribeWhenReady(consumer, {
        topics: options.topics,
        fromBeginning: options.fromBeginning ?? true,
      });
      await consumer.run({
        autoCommit: true,
        autoCommitInterval: 1_000,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: options.partitionsConsumedConcurrently ?? 3,
        eachBatch: async ({
          batch,
          resolveOffset,
          heartbeat,
          isRunning,
          isStale,
          commitOffsetsIfNecessary,
        }) => {
          for (let i = 0; i < batch.messages.length; i += maxChunkRecords) {
            const chunk = batch.messages.slice(i, i + maxChunkRecords).map((message): ConsumedRecord => ({
              topic: batch.topic,
              partition: batch.partition,
              message,
            }));
            let delayMs = initialRetryMs;
            let outcomes: Outcomes;
            for (;;) {
              if (!isRunning() || isStale()) {
                failingSince = 0;
                return;
              }
              try {
                outcomes = await processChunk(chunk);
                failingSince = 0;
                lastProgressAt = Date.now();
                break;
              } catch (error) {
                failingSince ||= Date.now();
                if (Date.now() - failingSince > maxFailingMs) {
                  log.error({ err: error, maxFailingMs }, 'records kept failing; giving up');
                  options.onFatal(error);
                  return;
                }
                log.warn(
                  {
                    err: error,
                    topic: batch.topic,
                    partition: batch.partition,
                    offset: chunk[0]!.message.offset,
                    delayMs,
                  },
                  'records failed; retrying',
                );
                // Sleep in slices so the group membership stays alive and a stop is not held up.
                const until = Date.now() + delayMs;
                while (Date.now() < until) {
                  if (!isRunning() || isStale()) return;
                  await heartbeat();
                  await sleep(Math.min(500, until - Date.now()));
                }
                delayMs = Math.min(delayMs * 2, maxRetryMs);
              }
            }
            chunk.forEach((record, j) =>
              options.onRecordDone?.(record, outcomes[j]!.outcome, outcomes[j]!.error),
            );
            resolveOffset(chunk[chunk.length - 1]!.message.offset);
            await commitOffsetsIfNecessary();
            await heartbeat();
          }
          options.onBatchDone?.({
            topic: batch.topic,
            partition: batch.partition,
            lag: Number(batch.offsetLag()),
          });
        },
      });
    },
    async stop() {
      stopping = true;
      await consumer.disconnect();
      running = false;
    },
  };
}
