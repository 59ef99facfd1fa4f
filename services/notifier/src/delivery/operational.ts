import { endpointMatches, type Endpoint, type OperationalEventType } from '../endpoints/model';
import { messageId } from '@ampflow/contracts';
import type { OperationalEvents } from './dispatcher';
import type { DeadLetterInfo, DurableWriter } from './durable-writer';
import type { WorkItem } from './work-item';

/**
 * Operational events for the operator (`endpoint.disabled`, `endpoint.recovered`, `message.attempt.exhausted`),
 * delivered like customer events, signed the same way, to the endpoints that subscribe to them by type. They
 * are written to the first retry tier (durable) rather than sent inline. Their ids are deterministic from
 * what happened, so a repeat is recognisable.
 */
export function createOperationalEvents(deps: {
  endpoints: { list(): Endpoint[] };
  writer: DurableWriter;
  now?: () => number;
}): OperationalEvents {
  const now = deps.now ?? Date.now;

  async function emit(
    type: OperationalEventType,
    sourceId: string,
    data: Record<string, unknown>,
    signal: AbortSignal | undefined,
    /** When it happened, if known (default now): a repeat of the event is then the same work item. */
    atMs?: number,
  ): Promise<boolean> {
    const at = atMs ?? now();
    const id = messageId(sourceId, type);
    const body = JSON.stringify({ type, timestamp: new Date(at).toISOString(), data });
    const routing = { provider: 'ampflow', vehicleIds: [], userId: null, sourceId };
    const targets = deps.endpoints.list().filter((e) => endpointMatches(e, { type, routing }));
    const written = await Promise.all(
      targets.map((endpoint) => {
        const item: WorkItem = {
          messageId: id,
          endpointId: endpoint.id,
          type,
          body,
          routing,
          attempt: 1,
          dueAt: at,
          sourceTimestampMs: at,
          reason: 'new',
        };
        return deps.writer.schedule(item, signal);
      }),
    );
    // A dead letter (an event too large for its tier) is durable too.
    return written.every((result) => result !== 'abandoned');
  }

  const originOf = (url: string) => {
    try {
      return new URL(url).origin;
    } catch {
      return null;
    }
  };
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

  return {
    endpointDisabled: (endpoint, reason, failingSince, signal) =>
      emit(
        'endpoint.disabled',
        `${endpoint.id}:disabled:${endpoint.disabledAt ?? now()}`,
        {
          endpointId: endpoint.id,
          // The origin only: subscribers of operational events need not see another endpoint's path or query.
          urlOrigin: originOf(endpoint.url),
          reason,
          disabledAt: endpoint.disabledAt,
          failingSince: iso(failingSince),
        },
        signal,
        // Due at the disabling: written again after a stop (dispatcher), it is the same retry-tier record, so
        // its done mark recognises it.
        endpoint.disabledAt === null ? undefined : Date.parse(endpoint.disabledAt),
      ),
    endpointRecovered: (endpoint, failingSince, signal) =>
      emit(
        'endpoint.recovered',
        `${endpoint.id}:recovered:${failingSince ?? now()}`,
        {
          endpointId: endpoint.id,
          urlOrigin: originOf(endpoint.url),
          recoveredAt: new Date(now()).toISOString(),
          failingSince: iso(failingSince),
        },
        signal,
      ),
    attemptsExhausted: (item: WorkItem, info: DeadLetterInfo, signal?: AbortSignal) =>
      // Deterministic from the delivery, so a repeat (the record read again) carries the same id.
      emit(
        'message.attempt.exhausted',
        `${item.messageId}:${item.endpointId}:exhausted:${info.attempts}`,
        {
          endpointId: item.endpointId,
          messageId: item.messageId,
          eventType: item.type,
          attempts: info.attempts,
          lastStatus: info.lastStatus,
          lastError: info.lastError,
          failedAt: new Date(info.failedAt).toISOString(),
        },
        signal,
      ),
  };
}
