import { AppError } from '@ampflow/runtime';
import type { AttemptView, DeadLetterView, DeliveryControl } from '../admin/delivery-control';
import type { Endpoint } from '../endpoints/model';
import type { StoredMessage } from '../fanout/fanout';
import type { DeadLetterRecord } from './dlq-scan';
import type { DurableWriter } from './durable-writer';
import type { WorkItem } from './work-item';

/** What the control needs of the attempt log (Redis: history, may be empty). */
export interface AttemptHistory {
  forEndpoint(endpointId: string, limit: number): Promise<AttemptView[]>;
  forMessage(messageId: string): Promise<AttemptView[]>;
  getMessage(id: string): Promise<StoredMessage | null>;
  deadLetters(filter: { endpointId?: string; limit: number }): Promise<DeadLetterView[]>;
  clearDeadLetter(messageId: string, endpointId: string): void;
  /**
   * Re-send bookkeeping in the message log: `requeued` before the re-send is written (its first attempt may be
   * recorded before the write's acknowledgement comes back, and must not be overwritten by a later "pending"),
   * `requeueFailed` when it was not written after all (still dead). Optional: no message log, nothing to do.
   */
  markRequeued?(messageId: string, endpointId: string): void;
  markRequeueFailed?(messageId: string, endpointId: string): void;
}

const notFound = (code: string, message: string) => new AppError(code, message, false, 404);

/**
 * The admin API's delivery operations. Re-sends are new work items (attempt 1, a fresh schedule, the same
 * `webhook-id`) written to the first retry tier, so they are durable the moment the API answers 202.
 * `recover` reads the deliveries DLQ (the durable record of failures) rather than the Redis index, so it works
 * after Redis lost its data; `retry` uses the stored message when Redis has it and the DLQ otherwise (found
 * through the DLQ index, not a scan: see `dlq-lookup.ts`).
 */
export function createDeliveryControl(deps: {
  history: AttemptHistory;
  endpoints: { get(id: string): Endpoint | undefined };
  writer: DurableWriter;
  /** Reads the DLQ from the first record at or after `sinceMs` (for `recover`, which wants a time range). */
  scan(sinceMs: number, keep: (record: DeadLetterRecord) => boolean): Promise<DeadLetterRecord[]>;
  /** A message's dead letters, through the index (for `retry`: one message, whatever its age). */
  findDeadLetters(messageId: string, endpointId?: string): Promise<DeadLetterRecord[]>;
  now?: () => number;
}): DeliveryControl {
  const now = deps.now ?? Date.now;

  async function requeue(
    records: Array<
      Pick<WorkItem, 'messageId' | 'endpointId' | 'type' | 'body' | 'routing' | 'sourceTimestampMs'>
    >,
    reason: 'manual_retry' | 'recover',
  ): Promise<number> {
    const seen = new Set<string>();
    let queued = 0;
    for (const record of records) {
      const key = `${record.messageId}:${record.endpointId}`;
      if (seen.has(key) || !deps.endpoints.get(record.endpointId)) continue;
      seen.add(key);
      const item: WorkItem = { ...record, attempt: 1, dueAt: now(), reason };
      deps.history.markRequeued?.(record.messageId, record.endpointId);
      // Bounded: an API call answers 503 while Kafka is away rather than hanging.
      const result = await deps.writer.schedule(item, AbortSignal.timeout(10_000));
      if (result === 'abandoned') {
        deps.history.markRequeueFailed?.(record.messageId, record.endpointId);
        throw new AppError('kafka_unavailable', 'Kafka did not take the re-send', true, 503);
      }
      // Too large for the retry tier: the writer dead-lettered it again (record_too_large), not queued.
      if (result === 'dead_lettered') {
        deps.history.markRequeueFailed?.(record.messageId, record.endpointId);
        continue;
      }
      deps.history.clearDeadLetter(record.messageId, record.endpointId);
      queued += 1;
    }
    return queued;
  }

  return {
    attemptsForEndpoint: (endpointId, limit) => deps.history.forEndpoint(endpointId, limit),
    attemptsForMessage: (messageId) => deps.history.forMessage(messageId),
    deadLetters: (filter) => deps.history.deadLetters(filter),

    async retryMessage(messageId, endpointId) {
      if (endpointId !== undefined && !deps.endpoints.get(endpointId))
        throw notFound('endpoint_not_found', `no endpoint ${endpointId}`);
      const stored = await deps.history.getMessage(messageId);
      if (stored) {
        let targets: string[];
        if (endpointId !== undefined) targets = [endpointId];
        else {
          const attempts = await deps.history.forMessage(messageId);
          // Every endpoint whose latest attempt of this message did not succeed.
          const latest = new Map<string, AttemptView>();
          for (const a of attempts) {
            const seen = latest.get(a.endpointId);
            if (!seen || a.at > seen.at || (a.at === seen.at && a.attempt > seen.attempt))
              latest.set(a.endpointId, a);
          }
          targets = [...latest.values()].filter((a) => a.status !== 'succeeded').map((a) => a.endpointId);
        }
        if (targets.length > 0) {
          const queued = await requeue(
            targets.map((target) => ({
              messageId,
              endpointId: target,
              type: stored.type,
              body: stored.body,
              routing: stored.routing,
              sourceTimestampMs: stored.sourceTimestampMs,
            })),
            'manual_retry',
          );
          return { queued };
        }
      }
      // Not in Redis (expired or lost), or no failed attempt there: the DLQ knows what failed.
      const records = await deps.findDeadLetters(messageId, endpointId);
      if (records.length === 0) {
        if (stored) return { queued: 0 };
        throw notFound(
          'message_not_found',
          `no message ${messageId} is known (attempts expire after the retention)`,
        );
      }
      return { queued: await requeue(records, 'manual_retry') };
    },

    async recover(endpointId, sinceMs) {
      if (!deps.endpoints.get(endpointId)) throw notFound('endpoint_not_found', `no endpoint ${endpointId}`);
      const records = await deps.scan(sinceMs, (r) => r.endpointId === endpointId);
      return { queued: await requeue(records, 'recover') };
    },
  };
}
