import type { AttemptView } from '../admin/delivery-control';
import type { CircuitState } from '../delivery/circuit-breaker';
import type { Endpoint } from '../endpoints/model';

/** The type of the test message `POST /v1/endpoints/:id/test` sends (not a subscribable type). */
export const TEST_EVENT_TYPE = 'endpoint.test';

/**
 * Where one message stands with one endpoint: `pending` (not attempted yet, or re-sent and waiting), `failed`
 * (the last attempt failed and another is scheduled), `delivered`, or `dead` (no more automatic attempts: a
 * dead letter, retryable through the API).
 */
export type DeliveryStatus = 'delivered' | 'failed' | 'pending' | 'dead';
export const DELIVERY_STATUSES: readonly DeliveryStatus[] = ['delivered', 'failed', 'pending', 'dead'];

/** What the message log keeps per message and endpoint (Redis hash field `s:<endpointId>`). */
export interface DeliveryState {
  status: DeliveryStatus;
  /** HTTP status of the last attempt, if it had an answer. */
  lastStatusCode: number | null;
  /** ISO-8601, when `failed`. */
  nextAttemptAt: string | null;
}

/** The state an attempt leaves its delivery in. */
export function stateAfterAttempt(attempt: AttemptView): DeliveryState {
  const status: DeliveryStatus =
    attempt.next === 'done' ? 'delivered' : attempt.next === 'retry' ? 'failed' : 'dead';
  return {
    status,
    lastStatusCode: attempt.httpStatus,
    nextAttemptAt: status === 'failed' ? (attempt.nextAttemptAt ?? null) : null,
  };
}

/**
 * What the message log keeps of a message itself (hash field `meta`); the body stays in the attempt log, and
 * when it was made is its score in the time index. The same for every copy of a message (a replay), so it is
 * written without a check.
 */
export interface MessageMeta {
  type: string;
  vehicleIds: string[];
}

/** One endpoint of a message, as `GET /v1/messages` shows it. */
export interface MessageEndpointView {
  endpointId: string;
  status: DeliveryStatus;
  attempts: number;
  lastStatusCode?: number;
  nextAttemptAt?: string;
}

export interface MessageSummary {
  id: string;
  type: string;
  vehicleId?: string;
  createdAt: string;
  endpoints: MessageEndpointView[];
}

/**
 * A message summary from its hash (`meta`, `s:<endpointId>`, `n:<endpointId>` fields) and its time in the index
 * (`createdAtMs`, when the notifier first made it or, for an event it did not save, first attempted it); null
 * when the meta is gone (expired). Endpoints in id order.
 */
export function summaryOf(
  id: string,
  hash: Record<string, string>,
  createdAtMs: number,
): MessageSummary | null {
  const metaText = hash.meta;
  if (metaText === undefined) return null;
  const meta = JSON.parse(metaText) as MessageMeta;
  const endpoints: MessageEndpointView[] = [];
  for (const [field, value] of Object.entries(hash)) {
    if (!field.startsWith('s:')) continue;
    const endpointId = field.slice(2);
    const state = JSON.parse(value) as DeliveryState;
    const view: MessageEndpointView = {
      endpointId,
      status: state.status,
      attempts: Number(hash[`n:${endpointId}`] ?? 0),
    };
    if (state.lastStatusCode !== null) view.lastStatusCode = state.lastStatusCode;
    if (state.nextAttemptAt !== null) view.nextAttemptAt = state.nextAttemptAt;
    endpoints.push(view);
  }
  endpoints.sort((a, b) => (a.endpointId < b.endpointId ? -1 : a.endpointId > b.endpointId ? 1 : 0));
  const summary: MessageSummary = {
    id,
    type: meta.type,
    createdAt: new Date(createdAtMs).toISOString(),
    endpoints,
  };
  if (meta.vehicleIds[0] !== undefined) summary.vehicleId = meta.vehicleIds[0];
  return summary;
}

export interface MessageFilter {
  endpointId?: string;
  eventType?: string;
  vehicle?: string;
  status?: DeliveryStatus;
}

/**
 * The summary as the filter shows it, or null when it does not match: of the right type, about the vehicle,
 * with a delivery to the endpoint (only that one shown) and/or in the status (with an endpoint, that
 * endpoint's; else any).
 */
export function applyFilter(
  summary: MessageSummary,
  vehicleIds: readonly string[],
  filter: MessageFilter,
): MessageSummary | null {
  if (filter.eventType !== undefined && summary.type !== filter.eventType) return null;
  if (filter.vehicle !== undefined && !vehicleIds.includes(filter.vehicle)) return null;
  let endpoints = summary.endpoints;
  if (filter.endpointId !== undefined) {
    endpoints = endpoints.filter((e) => e.endpointId === filter.endpointId);
    if (endpoints.length === 0) return null;
  }
  if (filter.status !== undefined && !endpoints.some((e) => e.status === filter.status)) return null;
  return endpoints === summary.endpoints ? summary : { ...summary, endpoints };
}

/** A position in the time index: the score (createdAt, ms) and member of the last entry returned. */
export interface MessageCursor {
  score: number;
  member: string;
}

export function encodeCursor(cursor: MessageCursor): string {
  return Buffer.from(JSON.stringify([cursor.score, cursor.member]), 'utf8').toString('base64url');
}

/** The cursor, or null when the text is not one this log made. */
export function decodeCursor(text: string): MessageCursor | null {
  try {
    const value: unknown = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      typeof value[0] === 'number' &&
      Number.isFinite(value[0]) &&
      typeof value[1] === 'string' &&
      value[1].length > 0
    )
      return { score: value[0], member: value[1] };
  } catch {
    // not JSON: falls through
  }
  return null;
}

/**
 * Whether an index entry comes after the cursor in newest-first order. Redis orders equal scores by member,
 * and a reverse range reverses that, so after (score, member) come lower scores and, at the same score,
 * smaller members.
 */
export function isAfterCursor(score: number, member: string, cursor: MessageCursor | undefined): boolean {
  if (!cursor) return true;
  return score < cursor.score || (score === cursor.score && member < cursor.member);
}

const MINUTE_MS = 60_000;

/** The minute an attempt is counted in (epoch minutes). */
export const minuteOf = (ms: number): number => Math.floor(ms / MINUTE_MS);

/** The 60 minutes counted as "the last hour" at `nowMs`, the current (partial) one included. */
export function lastHourMinutes(nowMs: number): number[] {
  const now = minuteOf(nowMs);
  return Array.from({ length: 60 }, (_, i) => now - 59 + i);
}

export interface EndpointHealth {
  circuit: 'closed' | 'open' | 'half-open';
  /** Failed attempts over attempts in the last hour, 0..1 (0 when none); null while Redis does not answer. */
  failureRate1h: number | null;
  /** Attempts in the last hour (every instance's); null while Redis does not answer. */
  attempts1h: number | null;
  /** ISO-8601: the first failure of the current unbroken run of failures. */
  failingSince?: string;
  /** Why it is disabled, while it is. */
  disabledReason?: string;
}

/**
 * An endpoint's health from its circuit (the deployment's, from the endpoint-health topic) and its attempts and
 * failures in the last hour (null when they could not be read).
 */
export function healthOf(
  endpoint: Pick<Endpoint, 'enabled' | 'disabledReason'>,
  circuit: CircuitState,
  lastHour: { attempts: number; failures: number } | null,
): EndpointHealth {
  const attempts = lastHour === null ? null : Math.max(0, lastHour.attempts);
  const failures =
    lastHour === null || attempts === null ? 0 : Math.min(Math.max(0, lastHour.failures), attempts);
  const health: EndpointHealth = {
    circuit: circuit.status === 'half_open' ? 'half-open' : circuit.status,
    failureRate1h:
      attempts === null ? null : attempts === 0 ? 0 : Math.round((failures / attempts) * 10_000) / 10_000,
    attempts1h: attempts,
  };
  if (circuit.failingSince !== null) health.failingSince = new Date(circuit.failingSince).toISOString();
  if (!endpoint.enabled && endpoint.disabledReason !== null) health.disabledReason = endpoint.disabledReason;
  return health;
}
