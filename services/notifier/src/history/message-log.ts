import { randomUUID } from 'node:crypto';
import { AppError, DependencyError } from '@ampflow/runtime';
import type { AttemptView } from '../admin/delivery-control';
import type { AdminMessageLog, MessageDetail, RetrySelection } from '../admin/message-log';
import type { CircuitState } from '../delivery/circuit-breaker';
import type { StoredMessage } from '../delivery/attempt-log';
import type { DurableWriter } from '../delivery/durable-writer';
import type { WorkItem } from '../delivery/work-item';
import { messageId as messageIdOf } from '@ampflow/contracts';
import type { MessageIndex } from './message-index';
import { healthOf, TEST_EVENT_TYPE, type DeliveryStatus, type MessageCursor } from './message-log-model';

export { TEST_EVENT_TYPE };

/** The `endpoint.test` message for one endpoint at `atMs`: as stored for the log, and as a work item. */
export function testMessage(
  endpointId: string,
  atMs: number,
  nonce: string,
): { message: StoredMessage & { endpointIds: string[] }; item: WorkItem } {
  const sourceId = `${endpointId}:test:${atMs}:${nonce}`;
  const id = messageIdOf(sourceId, TEST_EVENT_TYPE);
  const timestamp = new Date(atMs).toISOString();
  const body = JSON.stringify({
    type: TEST_EVENT_TYPE,
    timestamp,
    data: { endpointId, message: 'A test event sent from the ampflow admin API.', sentAt: timestamp },
  });
  const routing = { provider: 'ampflow', vehicleIds: [], userId: null, sourceId };
  return {
    message: { id, type: TEST_EVENT_TYPE, body, routing, sourceTimestampMs: atMs, endpointIds: [endpointId] },
    item: {
      messageId: id,
      endpointId,
      type: TEST_EVENT_TYPE,
      body,
      routing,
      attempt: 1,
      dueAt: atMs,
      sourceTimestampMs: atMs,
      reason: 'new',
    },
  };
}

/** Index entries a bulk retry examines at most, over all its pages. */
export const RETRY_SCAN_LIMIT = 50_000;

/**
 * The message log the admin API reads: the Redis index (message-index.ts) with the attempt log's bodies and
 * attempts, endpoint health from the deployment's circuits and the per-minute counters, test events, and bulk
 * re-sends through the one-message retry.
 */
export function createMessageLog(deps: {
  index: MessageIndex;
  circuitOf(endpointId: string): CircuitState;
  writer: Pick<DurableWriter, 'schedule'>;
  retryMessage(messageId: string, endpointId?: string): Promise<{ queued: number }>;
  now?: () => number;
}): AdminMessageLog {
  const { index } = deps;
  const now = deps.now ?? Date.now;

  return {
    list: (query) => fromRedis(() => index.list(query)),

    async get(messageId) {
      const [found, stored, attempts] = await fromRedis(() =>
        Promise.all([index.summary(messageId), index.getMessage(messageId), index.forMessage(messageId)]),
      );
      if (!found && !stored && attempts.length === 0) return null;
      const type = found?.summary.type ?? stored?.type ?? attempts[0]!.eventType;
      const createdAt =
        found?.summary.createdAt ??
        (stored ? new Date(stored.sourceTimestampMs).toISOString() : earliest(attempts));
      const detail: MessageDetail = {
        id: messageId,
        type,
        createdAt,
        body: stored ? (JSON.parse(stored.body) as unknown) : null,
        routing: stored?.routing ?? null,
        endpoints: found?.summary.endpoints ?? [],
        attempts,
      };
      const vehicleId = found?.summary.vehicleId ?? stored?.routing.vehicleIds[0];
      if (vehicleId !== undefined) detail.vehicleId = vehicleId;
      return detail;
    },

    async health(endpoints) {
      // Endpoints live in Kafka: without Redis they are still listed, their counts unknown (null).
      const counts = await index
        .lastHour(
          endpoints.map((e) => e.id),
          now(),
        )
        .catch(() => null);
      return new Map(
        endpoints.map((endpoint) => [
          endpoint.id,
          healthOf(
            endpoint,
            deps.circuitOf(endpoint.id),
            counts === null ? null : (counts.get(endpoint.id) ?? { attempts: 0, failures: 0 }),
          ),
        ]),
      );
    },

    async sendTest(endpoint) {
      const { message, item } = testMessage(endpoint.id, now(), randomUUID());
      // Bounded: the API answers 503 while Kafka is away rather than hanging.
      const result = await deps.writer.schedule(item, AbortSignal.timeout(10_000));
      if (result === 'abandoned')
        throw new AppError('kafka_unavailable', 'Kafka did not take the test message', true, 503);
      index.saveMessages([message]);
      return { messageId: message.id };
    },

    async retryMatching(selection) {
      const wanted: ReadonlySet<DeliveryStatus> = new Set(
        selection.status === undefined ? ['failed', 'dead'] : [selection.status],
      );
      let retried = 0;
      let messages = 0;
      let cursor: MessageCursor | undefined;
      let scanned = 0;
      while (messages < selection.limit && scanned < RETRY_SCAN_LIMIT) {
        const pageSize = Math.min(200, selection.limit - messages);
        const page = await fromRedis(() =>
          index.list({
            ...filterOf(selection),
            limit: pageSize,
            cursor,
            scanLimit: Math.min(5_000, RETRY_SCAN_LIMIT - scanned),
          }),
        );
        // Counted by pages, not exactly: a bound on the work, not a figure anyone reads.
        scanned += Math.max(page.data.length, page.nextCursor ? 5_000 : 0);
        for (const message of page.data) {
          const targets = message.endpoints.filter((e) => wanted.has(e.status)).map((e) => e.endpointId);
          if (targets.length === 0) continue;
          messages += 1;
          for (const endpointId of targets) {
            try {
              retried += (await deps.retryMessage(message.id, endpointId)).queued;
            } catch (error) {
              // Expired meanwhile, or its endpoint deleted: nothing to re-send. Anything else (Kafka) fails the call.
              if (error instanceof AppError && error.httpStatus === 404) continue;
              throw error;
            }
          }
          if (messages >= selection.limit) break;
        }
        if (!page.nextCursor) break;
        cursor = page.nextCursor;
      }
      return { retried };
    },
  };
}

/** A Redis failure as the taxonomy's retriable 503 `redis_unavailable` (other errors pass). */
async function fromRedis<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (error instanceof AppError) throw error;
    throw new DependencyError('redis_unavailable', 'Redis did not answer the message log read', {
      cause: error,
    });
  }
}

function filterOf(selection: RetrySelection) {
  return {
    ...(selection.endpointId !== undefined && { endpointId: selection.endpointId }),
    ...(selection.eventType !== undefined && { eventType: selection.eventType }),
    ...(selection.status !== undefined && { status: selection.status }),
    ...(selection.sinceMs !== undefined && { sinceMs: selection.sinceMs }),
    ...(selection.untilMs !== undefined && { untilMs: selection.untilMs }),
  };
}

function earliest(attempts: AttemptView[]): string {
  return attempts.reduce((min, a) => (a.at < min ? a.at : min), attempts[0]!.at);
}
