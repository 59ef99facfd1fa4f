import type { Consumer, IHeaders, Kafka, KafkaMessage } from 'kafkajs';
import { AppError } from '@ampflow/runtime';
import { DeadLetterHeaders, dlqTopic } from '@ampflow/contracts';
import type { Logger } from '@ampflow/observability';
import type { ReliableProducer } from './producer';

export interface ConsumedRecord {
  topic: string;
  partition: number;
  message: KafkaMessage;
}

/**
 * Returns when the record is done (its outputs acknowledged); throws to say "try again".
 * An {@link AppError} with `retriable: false` means the record can never succeed: it is dead-lettered.
 */
export type RecordHandler = (record: ConsumedRecord) => Promise<void>;

export interface ConsumerRunnerOptions {
  kafka: Kafka;
  groupId: string;
  topics: string[];
  fromBeginning?: boolean;
  handler: RecordHandler;
  /** Producer for `<topic>.dlq`; required to dead-letter, otherwise every failure is retried. */
  deadLetterProducer?: ReliableProducer;
  logger: Logger;
  /** Backoff between retries of a failing record: doubles from `initialRetryMs` up to `maxRetryMs`. */
  initialRetryMs?: number;
  maxRetryMs?: number;
  sessionTimeoutMs?: number;
  /** Called when kafkajs gives up on the consumer for good (it will not restart). */
  onFatal?: (error: unknown) => void;
  /** Called after each record is done, dead-lettered or not. */
  onRecordDone?: (record: ConsumedRecord, outcome: 'ok' | 'dead_lettered') => void;
}

export interface ConsumerRunner {
  start(): Promise<void>;
  /** Finishes the record in hand, commits, leaves the group. */
  stop(): Promise<void>;
  /** True while the consumer is a member of its group. */
  isRunning(): boolean;
  readonly consumer: Consumer;
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
 * The one consumer runner: per-partition order, offsets resolved only after the handler returned (or the
 * record was dead-lettered), retriable failures retried with backoff while heartbeating, permanent
 * failures sent to `<topic>.dlq` so processing continues.
 */
export function createConsumerRunner(options: ConsumerRunnerOptions): ConsumerRunner {
  const log = options.logger.child({ component: 'consumer', groupId: options.groupId });
  const initialRetryMs = options.initialRetryMs ?? 200;
  const maxRetryMs = options.maxRetryMs ?? 10_000;
  const consumer = options.kafka.consumer({
    groupId: options.groupId,
    sessionTimeout: options.sessionTimeoutMs ?? 30_000,
    heartbeatInterval: 3_000,
    allowAutoTopicCreation: false,
    retry: { retries: 10, initialRetryTime: 300, maxRetryTime: 10_000 },
  });
  let running = false;

  consumer.on(consumer.events.GROUP_JOIN, () => {
    running = true;
  });
  consumer.on(consumer.events.STOP, () => {
    running = false;
  });
  consumer.on(consumer.events.CRASH, (event) => {
    running = false;
    const { error, restart } = event.payload;
    log.error({ err: error, restart }, 'consumer crashed');
    if (!restart) options.onFatal?.(error);
  });

  async function deadLetter(record: ConsumedRecord, error: unknown): Promise<void> {
    if (!options.deadLetterProducer) throw error;
    await options.deadLetterProducer.send(dlqTopic(record.topic), [
      {
        key: record.message.key,
        value: record.message.value,
        headers: deadLetterHeaders(record, error, new Date()),
      },
    ]);
  }

  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  return {
    consumer,
    isRunning: () => running,
    async start() {
      await consumer.connect();
      await consumer.subscribe({ topics: options.topics, fromBeginning: options.fromBeginning ?? true });
      await consumer.run({
        autoCommit: true,
        autoCommitInterval: 1_000,
        eachBatchAutoResolve: false,
        eachBatch: async ({
          batch,
          resolveOffset,
          heartbeat,
          isRunning,
          isStale,
          commitOffsetsIfNecessary,
        }) => {
          for (const message of batch.messages) {
            if (!isRunning() || isStale()) return;
            const record: ConsumedRecord = { topic: batch.topic, partition: batch.partition, message };
            let delayMs = initialRetryMs;
            for (;;) {
              try {
                await options.handler(record);
                options.onRecordDone?.(record, 'ok');
                break;
              } catch (error) {
                if (isPermanentFailure(error)) {
                  log.warn(
                    { err: error, topic: record.topic, partition: record.partition, offset: message.offset },
                    'dead-lettering a record that can never succeed',
                  );
                  await deadLetter(record, error);
                  options.onRecordDone?.(record, 'dead_lettered');
                  break;
                }
                log.warn(
                  {
                    err: error,
                    topic: record.topic,
                    partition: record.partition,
                    offset: message.offset,
                    delayMs,
                  },
                  'record failed; retrying',
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
            resolveOffset(message.offset);
            await commitOffsetsIfNecessary();
            await heartbeat();
          }
        },
      });
    },
    async stop() {
      await consumer.disconnect();
      running = false;
    },
  };
}
