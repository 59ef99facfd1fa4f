import type { Consumer, IHeaders, Kafka, KafkaMessage, Message } from 'kafkajs';
import { AppError, isPermanent } from '@ampflow/runtime';
import { DeadLetterHeaders, dlqTopic } from '@ampflow/contracts';
import type { Logger } from '@ampflow/observability';
import type { ReliableProducer } from './producer';

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
 * What became of one record: the records to produce for it, or the error for which it can never succeed
 * (it goes to `<topic>.dlq` with that error in its headers).
 */
export type RecordOutcome = { outputs: OutputRecord[] } | { deadLetter: unknown };

/** What became of a chunk of one partition's records, as a chunk handler returns it. */
export interface ChunkOutcome {
  /** Records to produce for the whole chunk (not attributed to single records). */
  outputs: OutputRecord[];
  /** The records (by index in the chunk) that can never succeed, dead-lettered with their error. */
  deadLetters?: Array<{ index: number; error: unknown }>;
  /** Runs once outputs and dead letters are acknowledged, before the offsets move (e.g. to persist state). */
  afterSend?: () => Promise<void>;
}

/**
 * The outcome contract, in two explicit shapes (the consumer's third, `take`, owns its records' work: see
 * {@link TakeHandler}). A handler returns an outcome for "done" and throws for "try again": the chunk runs again
 * after a backoff, so handlers must be idempotent. A per-record handler that throws an {@link AppError} with
 * `retriable: false` has its record dead-lettered, never retried.
 * - `perRecord`: one record at a time, in the chunk's order; it may answer synchronously (no promise per
 *   record for a handler that does no I/O).
 * - `perChunk`: a whole chunk of one partition's records (for handlers that batch their own I/O). It names the
 *   records that can never succeed by index. A retriable error it throws retries the whole chunk (until
 *   `maxFailingMs`); a permanent one, or a permanent refusal of its outputs or in its `afterSend`, has the chunk
 *   handled again in halves down to the record at fault, which is dead-lettered (see {@link processChunk}).
 *
 * Either way a record whose outputs the producer refuses for good (`record_too_large`: over the output topic's
 * `max.message.bytes`) is dead-lettered with that error, and the partition goes on.
 */
export type ConsumerHandler =
  | { perRecord: (record: ConsumedRecord) => RecordOutcome | Promise<RecordOutcome> }
  | { perChunk: (records: ConsumedRecord[]) => Promise<ChunkOutcome> };

/** True when the outcome sends the record to its dead-letter topic. */
export function isDeadLetter(outcome: RecordOutcome): outcome is { deadLetter: unknown } {
  return 'deadLetter' in outcome;
}

/** What readiness reads off a consumer runner. */
export interface ConsumerHealth {
  /** A member of its group, consuming. */
  running: boolean;
  /** How long the chunk in hand has been failing (retried); 0 when none is. */
  failingMs: number;
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

/** What {@link processChunk} needs besides the records and the handler; tests give a fake producer. */
export interface ChunkDeps {
  producer: Pick<ReliableProducer, 'send'>;
  logger: Logger;
  /** Wall clock for the `failed-at` header (default `new Date()`). */
  now?: () => Date;
}

/**
 * Handles one chunk and sends everything it produced (outputs and dead letters, one send per topic, all at
 * once), then runs the chunk handler's `afterSend`. Resolves to each record's outcome once acknowledged;
 * throws, to have the whole chunk retried, on any retriable failure.
 *
 * A permanent failure of a chunk of several records (the producer refusing an output for good, e.g.
 * `record_too_large`; a chunk handler or its `afterSend` throwing a non-retriable error) cannot be pinned on a
 * record, so the chunk is handled again in halves, down to the record at fault, which is dead-lettered with that
 * error: the halves that succeed are done (their outputs sent, their `afterSend` run), a lone record that fails
 * for good is not applied. Outputs acknowledged before the refusal may be sent again (at-least-once). A
 * per-record handler runs once per record; only the sends are repeated.
 */
export async function processChunk(
  records: ConsumedRecord[],
  handler: ConsumerHandler,
  deps: ChunkDeps,
): Promise<RecordOutcome[]> {
  const handle: HandleChunk = 'perChunk' in handler ? handler.perChunk : handleEachRecord(handler.perRecord);
  return handleAndSend(records, { handle, deps, deadLettered: new Set() });
}

/** A chunk handler; a per-record handler becomes one that remembers each record's outcome. */
type HandleChunk = (records: ConsumedRecord[]) => Promise<ChunkOutcome & { outcomes?: RecordOutcome[] }>;

interface ChunkRun {
  handle: HandleChunk;
  deps: ChunkDeps;
  /** Records whose dead letter is acknowledged: not sent again when their half is handled again. */
  deadLettered: Set<ConsumedRecord>;
}

function handleEachRecord(
  perRecord: (record: ConsumedRecord) => RecordOutcome | Promise<RecordOutcome>,
): HandleChunk {
  const memo = new Map<ConsumedRecord, RecordOutcome>();
  return async (records) => {
    const outcomes: RecordOutcome[] = [];
    for (const record of records) {
      let outcome = memo.get(record);
      if (!outcome) {
        try {
          const result = perRecord(record);
          outcome = result instanceof Promise ? await result : result;
        } catch (error) {
          // A permanent failure retried would stall the partition for good.
          if (!isPermanent(error)) throw error;
          outcome = { deadLetter: error };
        }
        memo.set(record, outcome);
      }
      outcomes.push(outcome);
    }
    return { outputs: outcomes.flatMap((o) => (isDeadLetter(o) ? [] : o.outputs)), outcomes };
  };
}

async function handleAndSend(records: ConsumedRecord[], run: ChunkRun): Promise<RecordOutcome[]> {
  try {
    return await handleAndSendOnce(records, run);
  } catch (error) {
    if (!isPermanent(error)) throw error;
    const { deps } = run;
    if (records.length === 1) {
      const record = records[0]!;
      if (!run.deadLettered.has(record)) {
        const now = deps.now?.() ?? new Date();
        await sendGrouped(deps.producer, [deadLetterOutput(record, error, now, deps.logger)]);
      }
      return [{ deadLetter: error }];
    }
    deps.logger.warn(
      { err: error, topic: records[0]!.topic, partition: records[0]!.partition, records: records.length },
      'a chunk failed for good; handling it again in halves to find the record at fault',
    );
    const half = Math.ceil(records.length / 2);
    const first = await handleAndSend(records.slice(0, half), run);
    return [...first, ...(await handleAndSend(records.slice(half), run))];
  }
}

async function handleAndSendOnce(records: ConsumedRecord[], run: ChunkRun): Promise<RecordOutcome[]> {
  const { deps } = run;
  const result = await run.handle(records);
  const outcomes: RecordOutcome[] = result.outcomes ?? records.map(() => ({ outputs: [] }));
  for (const { index, error } of result.deadLetters ?? []) {
    if (!records[index])
      throw new Error(`the chunk handler dead-lettered index ${index} of ${records.length}`);
    outcomes[index] = { deadLetter: error };
  }
  const now = deps.now?.() ?? new Date();
  const deadLetters: OutputRecord[] = [];
  const deadRecords: ConsumedRecord[] = [];
  outcomes.forEach((outcome, index) => {
    const record = records[index]!;
    if (!isDeadLetter(outcome) || run.deadLettered.has(record)) return;
    deadLetters.push(deadLetterOutput(record, outcome.deadLetter, now, deps.logger));
    deadRecords.push(record);
  });
  // Together, but settled apart: dead letters acknowledged while an output is refused are not sent again.
  const [outputsSent, deadLettersSent] = await Promise.allSettled([
    sendGrouped(deps.producer, result.outputs),
    sendGrouped(deps.producer, deadLetters),
  ]);
  if (deadLettersSent.status === 'fulfilled') for (const record of deadRecords) run.deadLettered.add(record);
  const failures = [outputsSent, deadLettersSent].flatMap((s) => (s.status === 'rejected' ? [s.reason] : []));
  // A retriable failure retries the whole chunk; only when every failure is permanent is the culprit looked for.
  if (failures.length > 0) throw failures.find((f) => !isPermanent(f)) ?? failures[0];
  await result.afterSend?.();
  return outcomes;
}

/** One send per topic, in the order the outputs came; the sends of different topics run together. */
async function sendGrouped(producer: Pick<ReliableProducer, 'send'>, outputs: OutputRecord[]): Promise<void> {
  if (outputs.length === 0) return;
  const byTopic = new Map<string, Message[]>();
  for (const { topic, message } of outputs) {
    const list = byTopic.get(topic);
    if (list) list.push(message);
    else byTopic.set(topic, [message]);
  }
  await Promise.all([...byTopic].map(([topic, messages]) => producer.send(topic, messages)));
}

function deadLetterOutput(record: ConsumedRecord, error: unknown, now: Date, logger: Logger): OutputRecord {
  logger.warn(
    { err: error, topic: record.topic, partition: record.partition, offset: record.message.offset },
    'dead-lettering a record that can never succeed',
  );
  const { key, value } = record.message;
  return {
    topic: dlqTopic(record.topic),
    message: { key, value, headers: deadLetterHeaders(record, error, now) },
  };
}

/** Bytes per fetch response (all partitions of one broker) and per partition in it: see {@link groupConsumer}. */
export const DEFAULT_FETCH_MAX_BYTES = 1024 * 1024;
export const DEFAULT_FETCH_MAX_BYTES_PER_PARTITION = 256 * 1024;

/**
 * A consumer in a group with the settings every consumer here shares: heartbeats every second, a session of
 * `sessionTimeoutMs` (default 10 s: how long the group waits for a SIGKILLed member before its partitions move),
 * no automatic topic creation, kafkajs's own retries bounded, fetch responses bounded (`maxBytes`, 1 MiB, and
 * `maxBytesPerPartition`, 256 KiB, by default).
 */

export function groupConsumer(
  kafka: Kafka,
  options: {
    groupId: string;
    sessionTimeoutMs?: number;
    maxWaitTimeInMs: number;
    minBytes?: number;
    maxBytes?: number;
    maxBytesPerPartition?: number;
  },
): Consumer {
  return kafka.consumer({
    groupId: options.groupId,
    sessionTimeout: options.sessionTimeoutMs ?? 10_000,
    heartbeatInterval: 1_000,
    // The broker answers a fetch once `minBytes` are there (default 1: at once), else after `maxWaitTimeInMs`.
    maxWaitTimeInMs: options.maxWaitTimeInMs,
    minBytes: options.minBytes ?? 1,
    // Bounded fetch responses (kafkajs defaults: 10 MiB per request, 1 MiB per partition): a response's records
    // are slices of its one buffer, which stays in memory until the last of them is finished. Reading a 60,000-
    // record backlog through createConsumer: peak RSS 178 instead of 230 MB, same records/s (docs/memory.md).
    maxBytes: options.maxBytes ?? DEFAULT_FETCH_MAX_BYTES,
    maxBytesPerPartition: options.maxBytesPerPartition ?? DEFAULT_FETCH_MAX_BYTES_PER_PARTITION,
    allowAutoTopicCreation: false,
    retry: { retries: 10, initialRetryTime: 300, maxRetryTime: 10_000 },
  });
}

/**
 * Whether a consumer is a member of its group (joined, not stopped or crashed), and a crash kafkajs will not
 * restart from turned into `onFatal`: kafkajs restarts the consumer itself after a retriable crash; after any
 * other it stays stopped for good, which without this would look alive while consuming nothing.
 */
export function watchMembership(
  consumer: Consumer,
  options: {
    logger: Logger;
    onFatal: (error: unknown) => void;
    isStopping: () => boolean;
    /** Called on every join with the partitions this member now holds, by topic. */
    onJoin?: (assignment: Record<string, number[]>) => void;
  },
): { running(): boolean } {
  let running = false;
  consumer.on(consumer.events.GROUP_JOIN, (event) => {
    running = true;
    options.onJoin?.(event.payload.memberAssignment as Record<string, number[]>);
  });
  consumer.on(consumer.events.STOP, () => {
    running = false;
  });
  consumer.on(consumer.events.CRASH, (event) => {
    running = false;
    const { error, restart } = event.payload;
    if (restart) {
      options.logger.warn({ err: error }, 'consumer crashed; kafkajs restarts it');
      return;
    }
    options.logger.error({ err: error }, 'consumer crashed and will not restart');
    if (!options.isStopping()) options.onFatal(error);
  });
  return { running: () => running };
}
