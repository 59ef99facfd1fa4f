import type { IHeaders } from 'kafkajs';
import { DeadLetterHeaders } from '@ampflow/contracts';
import type { ReliableProducer } from '@ampflow/kafka';
import type { Logger } from '@ampflow/observability';
import { createRetryPolicy, retry } from '@ampflow/runtime';
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
} as const;

/** Why a delivery is a dead letter. */
export type DeadLetterReason =
  'exhausted' | 'aborted_by_receiver' | 'endpoint_gone' | 'endpoint_disabled' | 'undecodable';

export interface DeadLetterInfo {
  reason: DeadLetterReason;
  /** Attempts made. */
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  failedAt: number;
}

/**
 * Writes what must outlive this process: work items to their retry tier, dead letters to the deliveries DLQ.
 * Each write is retried until Kafka acknowledges it (a delivery's offset is committed only after that), or
 * until `signal` aborts (the process is stopping: the write is abandoned and reported `false`, so the source
 * record is not committed and is done again by the next reader).
 */
export interface DurableWriter {
  schedule(item: WorkItem, signal?: AbortSignal): Promise<boolean>;
  deadLetter(item: WorkItem, info: DeadLetterInfo, signal?: AbortSignal): Promise<boolean>;
}

export function createDurableWriter(options: {
  producer: Pick<ReliableProducer, 'send'>;
  topicPrefix: string;
  dlqTopic: string;
  logger: Logger;
  now?: () => number;
}): DurableWriter {
  const now = options.now ?? Date.now;
  const policy = createRetryPolicy({ baseDelayMs: 200, maxDelayMs: 5_000 });
  const log = options.logger.child({ component: 'durable-writer' });

  async function send(
    topic: string,
    message: { key: string; value: Buffer; headers?: IHeaders },
    signal?: AbortSignal,
  ) {
    try {
      await retry(() => options.producer.send(topic, [message]), {
        policy,
        shouldRetry: () => true,
        // Polled, not listened to: the signal is a partition's, shared by thousands of writes, and a listener
        // per write would make every add and remove on it slow. A stop waits at most one backoff (5 s).
        isStopped: () => signal?.aborted ?? false,
        onRetry: ({ error, attempt }) => {
          if (attempt === 1 || attempt % 20 === 0)
            log.warn({ err: error, topic, attempt }, 'Kafka did not take a delivery record; retrying');
        },
      });
      return true;
    } catch (error) {
      log.warn(
        { err: error, topic },
        'stopping: a delivery record was not written; it is done again on restart',
      );
      return false;
    }
  }

  return {
    schedule(item, signal) {
      const topic = retryTopic(options.topicPrefix, tierFor(item.dueAt - now()));
      return send(topic, { key: workItemKey(item), value: encodeWorkItem(item) }, signal);
    },
    deadLetter(item, info, signal) {
      const headers: IHeaders = {
        [DeliveryDlqHeaders.messageId]: item.messageId,
        [DeliveryDlqHeaders.endpointId]: item.endpointId,
        [DeliveryDlqHeaders.eventType]: item.type,
        [DeliveryDlqHeaders.attempts]: String(info.attempts),
        [DeliveryDlqHeaders.routing]: JSON.stringify(item.routing),
        [DeliveryDlqHeaders.sourceTimestamp]: String(item.sourceTimestampMs),
        [DeadLetterHeaders.errorCode]: info.reason,
        [DeadLetterHeaders.failedAt]: new Date(info.failedAt).toISOString(),
      };
      if (info.lastStatus !== null) headers[DeliveryDlqHeaders.lastStatus] = String(info.lastStatus);
      if (info.lastError !== null) headers[DeadLetterHeaders.errorMessage] = info.lastError.slice(0, 1_000);
      return send(
        options.dlqTopic,
        { key: workItemKey(item), value: Buffer.from(item.body), headers },
        signal,
      );
    },
  };
}
