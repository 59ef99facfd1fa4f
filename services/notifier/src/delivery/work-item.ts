import type { EventRouting } from '../events/customer-events';

/**
 * One delivery of one message to one endpoint, as it travels through the retry topics: self-contained (the
 * body is in it), so a delivery survives a notifier restart and a Redis that comes back empty.
 */
export interface WorkItem {
  /** `webhook-id`: deterministic from the source event, the same on every attempt and replay. */
  messageId: string;
  endpointId: string;
  type: string;
  /** The exact JSON text sent (and signed). */
  body: string;
  routing: EventRouting;
  /** The attempt this item makes next, 1-based. */
  attempt: number;
  /** Not before this time, epoch ms. */
  dueAt: number;
  /** The source record's timestamp, epoch ms (end-to-end lag). */
  sourceTimestampMs: number;
  /** Why it was (re)scheduled: the first attempt, a retry, waiting for capacity or an open circuit, an operator. */
  reason: 'new' | 'retry' | 'deferred' | 'manual_retry' | 'recover';
}

/** Kafka key of a work item: a repeat of the same delivery lands in the same partition. */
export function workItemKey(item: Pick<WorkItem, 'messageId' | 'endpointId'>): string {
  return `${item.messageId}:${item.endpointId}`;
}

export function encodeWorkItem(item: WorkItem): Buffer {
  return Buffer.from(JSON.stringify({ v: 1, ...item }));
}

/** Parses a work item; throws on anything that is not one (the caller dead-letters such a record). */
export function decodeWorkItem(value: Buffer | null): WorkItem {
  if (value === null) throw new Error('a work item record has no value');
  const parsed = JSON.parse(value.toString('utf8')) as Partial<WorkItem> & { v?: number };
  if (
    parsed.v !== 1 ||
    typeof parsed.messageId !== 'string' ||
    typeof parsed.endpointId !== 'string' ||
    typeof parsed.type !== 'string' ||
    typeof parsed.body !== 'string' ||
    typeof parsed.attempt !== 'number' ||
    typeof parsed.dueAt !== 'number' ||
    typeof parsed.routing !== 'object' ||
    parsed.routing === null
  ) {
    throw new Error('not a work item (version 1)');
  }
  return {
    messageId: parsed.messageId,
    endpointId: parsed.endpointId,
    type: parsed.type,
    body: parsed.body,
    routing: parsed.routing,
    attempt: parsed.attempt,
    dueAt: parsed.dueAt,
    sourceTimestampMs: typeof parsed.sourceTimestampMs === 'number' ? parsed.sourceTimestampMs : parsed.dueAt,
    reason: parsed.reason ?? 'retry',
  };
}
