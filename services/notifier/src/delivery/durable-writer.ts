import type { IHeaders, Message } from 'kafkajs';
import { DeadLetterHeaders } from '@ampflow/contracts';
import type { ReliableProducer } from '@ampflow/kafka';
import type { Logger } from '@ampflow/observability';
import { AppError, createRetryPolicy, retry } from '@ampflow/runtime';
import type { NotifierMetrics } from '../metrics';
import type { ConsumedRecord as PipelineRecord } from '@ampflow/kafka';
import { retryTopic, tierFor } from './retry-tiers';
import { encodeWorkItem, workItemKey, type WorkItem } from './work-item';

/** Headers of a record on `ev.webhook-deliveries.dlq`, besides the dead-letter ones (`error-code` = reason). */
export const DeliveryDlqHeaders = {
  messageId: 'message-id',
  endpointId: 'endpoint-id',
  eventType: 'event-type',
  attempts: 'attempts',
  lastStatus: 'last-status',
  routing: 'routing',
  sourceTimestamp: 'source-timestamp',
  /**
   * On a dead letter written without its value (the body, or an unreadable source record's bytes) because the
   * DLQ refused the whole record as too large: why, with the sizes. The value is null then.
   */
  bodyOmitted: 'body-omitted',
} as const;

/** Why a delivery is a dead letter. */
export type DeadLetterReason =
  | 'exhausted'
  | 'aborted_by_receiver'
  | 'endpoint_gone'
  | 'endpoint_disabled'
  | 'undecodable'
  /** Its retry tier refused the work item (body included) as larger than the topic's `max.message.bytes`. */
  | 'record_too_large';

export interface DeadLetterInfo {
  reason: DeadLetterReason;
  /** Attempts made. */
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  failedAt: number;
}

/**
 * What became of a work item given to {@link DurableWriter.schedule}: written to its retry tier; dead-lettered
 * instead (reason `record_too_large`) because the tier refused it as too large, which no retry can change; or
 * abandoned because the process is stopping (not durable: the source record is done again by the next reader).
 */
export type ScheduleResult = 'scheduled' | 'dead_lettered' | 'abandoned';

/**
 * Writes what must outlive this process: work items to their retry tier, dead letters to the deliveries DLQ.
 * Each write is retried until Kafka acknowledges it (a delivery's offset is committed only after that), or
 * until `signal` aborts (the process is stopping: the write is abandoned and reported as not durable, so the
 * source record is not committed and is done again by the next reader).
 *
 * A record Kafka refuses for good (`record_too_large`: over the topic's `max.message.bytes`) is never retried,
 * which would hold its partition's committed offset forever, nor dropped: a work item becomes a dead letter, a
 * dead letter too large for the DLQ is written without its body, and failing that in its smallest form (the ids,
 * the reason). Each step down is logged as an error and counted in `notifier_oversized_records_total`.
 */
export interface DurableWriter {
  schedule(item: WorkItem, signal?: AbortSignal): Promise<ScheduleResult>;
  /** Resolves `true` once the dead letter is written (in some form), `false` when `signal` aborted first. */
  deadLetter(item: WorkItem, info: DeadLetterInfo, signal?: AbortSignal): Promise<boolean>;
  /**
   * A record that is not what its topic should hold (`undecodable`): kept in the DLQ, key, value and headers as
   * they were plus the dead-letter headers with its topic, partition and offset.
   */
  deadLetterSource(record: PipelineRecord, info: DeadLetterInfo, signal?: AbortSignal): Promise<boolean>;
}

/**
 * A {@link DurableWriter} that also hands deliveries that are due now to the deliveries topic, keyed by endpoint
 * id: the fan-out and the retry tiers write there, and only its reader sends (one partition per endpoint).
 */
export interface DeliveryWriter extends DurableWriter {
  /**
   * Writes a delivery that is due now to the deliveries topic; resolves `true` once Kafka acknowledged it (or, too
   * large for the topic, once it is a dead letter), `false` when `signal` aborted first.
   */
  publish(item: WorkItem, signal?: AbortSignal): Promise<boolean>;
}

type Sent = { kind: 'written' } | { kind: 'abandoned' } | { kind: 'too_large'; error: AppError };

const isTooLarge = (error: unknown): error is AppError =>
  error instanceof AppError && error.code === 'record_too_large';

export function createDurableWriter(options: {
  producer: Pick<ReliableProducer, 'send'>;
  topicPrefix: string;
  dlqTopic: string;
  /** `${KAFKA_TOPIC_PREFIX}ampflow.notifier.deliveries`. */
  deliveriesTopic: string;
  metrics: Pick<NotifierMetrics, 'deadLetters' | 'oversized'>;
  logger: Logger;
  now?: () => number;
}): DeliveryWriter {
  const now = options.now ?? Date.now;
  const { metrics, dlqTopic } = options;
  const policy = createRetryPolicy({ baseDelayMs: 200, maxDelayMs: 5_000 });
  const log = options.logger.child({ component: 'durable-writer' });

  async function send(topic: string, message: Message, signal?: AbortSignal): Promise<Sent> {
    try {
      await retry(() => options.producer.send(topic, [message]), {
        policy,
        // Everything but a refusal for good: the broker away, a backlog, a limit the broker lowered (refused
        // once as kafka_unavailable, then known and refused as record_too_large before sending).
        shouldRetry: (error) => !isTooLarge(error),
        // Polled, not listened to: the signal is a partition's, shared by thousands of writes, and a listener
        // per write would make every add and remove on it slow. A stop waits at most one backoff (5 s).
        isStopped: () => signal?.aborted ?? false,
        onRetry: ({ error, attempt }) => {
          if (attempt === 1 || attempt % 20 === 0)
            log.warn({ err: error, topic, attempt }, 'Kafka did not take a delivery record; retrying');
        },
      });
      return { kind: 'written' };
    } catch (error) {
      if (isTooLarge(error)) return { kind: 'too_large', error };
      log.warn(
        { err: error, topic },
        'stopping: a delivery record was not written; it is done again on restart',
      );
      return { kind: 'abandoned' };
    }
  }

  /**
   * Writes the first of `forms` (largest first) that the DLQ takes. Resolves `true` when one was written, or
   * when none fits at all (logged as lost: a DLQ limit below a few hundred bytes is a misconfiguration, and
   * holding the partition for it would stop every other delivery).
   */
  async function writeDeadLetter(
    forms: Message[],
    what: Record<string, unknown>,
    reason: string,
    signal?: AbortSignal,
  ): Promise<boolean> {
    const refusals: string[] = [];
    for (const [index, form] of forms.entries()) {
      const sent = await send(dlqTopic, form, signal);
      if (sent.kind === 'abandoned') return false;
      if (sent.kind === 'written') {
        metrics.deadLetters.inc({ reason });
        if (index > 0) {
          metrics.oversized.inc({ topic_kind: 'dlq', outcome: index === 1 ? 'body_omitted' : 'minimal' });
          log.error(
            { ...what, reason, refusals },
            'a dead letter was too large for the DLQ; written without its body',
          );
        }
        return true;
      }
      refusals.push(sent.error.message);
      // The next, smaller form says why the larger one was refused.
      const next = forms[index + 1];
      if (next?.headers) next.headers[DeliveryDlqHeaders.bodyOmitted] = refusals[0]!.slice(0, 300);
    }
    metrics.oversized.inc({ topic_kind: 'dlq', outcome: 'lost' });
    log.error(
      { ...what, reason, refusals },
      'LOST: the DLQ refused even the smallest dead letter (ids and reason only); check its max.message.bytes',
    );
    return true;
  }

  const failedAtHeaders = (info: DeadLetterInfo) => ({
    [DeadLetterHeaders.errorCode]: info.reason,
    [DeadLetterHeaders.failedAt]: new Date(info.failedAt).toISOString(),
  });

  function deadLetter(item: WorkItem, info: DeadLetterInfo, signal?: AbortSignal): Promise<boolean> {
    const ids: IHeaders = {
      [DeliveryDlqHeaders.messageId]: item.messageId,
      [DeliveryDlqHeaders.endpointId]: item.endpointId,
      [DeliveryDlqHeaders.eventType]: item.type,
      ...failedAtHeaders(info),
    };
    const headers: IHeaders = {
      ...ids,
      [DeliveryDlqHeaders.attempts]: String(info.attempts),
      [DeliveryDlqHeaders.routing]: JSON.stringify(item.routing),
      [DeliveryDlqHeaders.sourceTimestamp]: String(item.sourceTimestampMs),
    };
    if (info.lastStatus !== null) headers[DeliveryDlqHeaders.lastStatus] = String(info.lastStatus);
    if (info.lastError !== null) headers[DeadLetterHeaders.errorMessage] = info.lastError.slice(0, 1_000);
    const key = workItemKey(item);
    return writeDeadLetter(
      [
        { key, value: Buffer.from(item.body), headers },
        // Without the body: `retry` still finds it in the attempt log while Redis keeps it (7 days).
        { key, value: null, headers: { ...headers } },
        { key, value: null, headers: { ...ids } },
      ],
      { messageId: item.messageId, endpointId: item.endpointId },
      info.reason,
      signal,
    );
  }

  /** Writes a work item to `topic`; one too large for it becomes a dead letter (no attempt can make it fit). */
  async function writeItem(
    topic: string,
    key: string,
    item: WorkItem,
    signal?: AbortSignal,
  ): Promise<ScheduleResult> {
    const sent = await send(topic, { key, value: encodeWorkItem(item) }, signal);
    if (sent.kind !== 'too_large') return sent.kind === 'written' ? 'scheduled' : 'abandoned';
    // No attempt can make it fit: kept as a dead letter (body included while the DLQ takes it).
    metrics.oversized.inc({ topic_kind: 'retry_tier', outcome: 'dead_lettered' });
    log.error(
      { messageId: item.messageId, endpointId: item.endpointId, topic, err: sent.error },
      'a delivery is too large for its retry tier; dead-lettered instead',
    );
    const info: DeadLetterInfo = {
      reason: 'record_too_large',
      attempts: item.attempt - 1,
      lastStatus: null,
      lastError: sent.error.message,
      failedAt: now(),
    };
    return (await deadLetter(item, info, signal)) ? 'dead_lettered' : 'abandoned';
  }

  return {
    deadLetter,
    schedule: (item, signal) =>
      writeItem(
        retryTopic(options.topicPrefix, tierFor(item.dueAt - now())),
        workItemKey(item),
        item,
        signal,
      ),
    // Keyed by endpoint: every delivery to one endpoint is in one partition, read by one instance at a time.
    publish: async (item, signal) =>
      (await writeItem(options.deliveriesTopic, item.endpointId, item, signal)) !== 'abandoned',
    deadLetterSource(record, info, signal) {
      const source = {
        [DeadLetterHeaders.sourceTopic]: record.topic,
        [DeadLetterHeaders.sourcePartition]: String(record.partition),
        [DeadLetterHeaders.sourceOffset]: record.message.offset,
        ...failedAtHeaders(info),
      };
      const headers: IHeaders = {
        ...(record.message.headers ?? {}),
        ...source,
        [DeadLetterHeaders.errorMessage]: (info.lastError ?? '').slice(0, 1_000),
      };
      const { key } = record.message;
      return writeDeadLetter(
        [
          { key, value: record.message.value, headers },
          { key, value: null, headers: { ...headers } },
          // Topic, partition and offset still name the record in its source topic.
          { key: null, value: null, headers: { ...source } },
        ],
        { topic: record.topic, partition: record.partition, offset: record.message.offset },
        info.reason,
        signal,
      );
    },
  };
}
