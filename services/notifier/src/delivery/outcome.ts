import { nextAttempt, parseRetryAfter, type RetrySchedule } from './retry-schedule';

/** What one HTTP attempt produced, as the sender reports it (no I/O here). */
export type AttemptResult =
  | {
      kind: 'response';
      status: number;
      /** Response headers; names in any case, values as strings or arrays as Node gives them. */
      headers: Readonly<Record<string, string | string[] | undefined>>;
    }
  /** No complete response within NOTIFIER_REQUEST_TIMEOUT_MS. */
  | { kind: 'timeout' }
  /** Connect refused, reset, DNS failure, TLS error, a refused address (SSRF guard): `code` as Node names it. */
  | { kind: 'network_error'; code: string };

/** Statuses whose `Retry-After` is honoured: throttling and "unavailable" (RFC 9110, Standard Webhooks). */
export const RETRY_AFTER_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504]);

export type Classification =
  | { kind: 'success'; status: number }
  /** 410 Gone: the receiver asks us to stop sending to this endpoint at all. */
  | { kind: 'endpoint_gone'; status: 410 }
  /** `webhook-delivery: abort-message` on a non-2xx answer: stop retrying this message only. */
  | { kind: 'aborted'; status: number }
  | { kind: 'failure'; reason: FailureReason; status: number | null; retryAfterMs?: number };

export type FailureReason = 'timeout' | 'network_error' | 'http_status';

function header(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  name: string,
): string | undefined {
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== name) continue;
    return Array.isArray(value) ? value[0] : value;
  }
  return undefined;
}

/**
 * Classifies one attempt. Only 2xx is success (a 3xx is a failure: redirects are not followed, so a moved
 * endpoint is noticed). A 2xx wins over any header. `Retry-After` is read on 429/502/503/504 only.
 */
export function classifyAttempt(result: AttemptResult, nowMs: number): Classification {
  if (result.kind === 'timeout') return { kind: 'failure', reason: 'timeout', status: null };
  if (result.kind === 'network_error') return { kind: 'failure', reason: 'network_error', status: null };
  const { status, headers } = result;
  if (status >= 200 && status < 300) return { kind: 'success', status };
  if (status === 410) return { kind: 'endpoint_gone', status };
  if (header(headers, 'webhook-delivery')?.trim().toLowerCase() === 'abort-message') {
    return { kind: 'aborted', status };
  }
  if (RETRY_AFTER_STATUSES.has(status)) {
    const retryAfterMs = parseRetryAfter(header(headers, 'retry-after'), nowMs);
    if (retryAfterMs !== undefined) return { kind: 'failure', reason: 'http_status', status, retryAfterMs };
  }
  return { kind: 'failure', reason: 'http_status', status };
}

/** What the dispatcher does next with a message after one attempt. */
export type Outcome =
  | { action: 'delivered' }
  /** Disable the endpoint (410); the message is kept as a dead letter with reason `endpoint_gone`. */
  | { action: 'disable_endpoint' }
  /** No more automatic attempts; dead-letter with `reason` (still retryable through the admin API). */
  | { action: 'dead_letter'; reason: 'exhausted' | 'aborted_by_receiver' }
  | { action: 'retry'; attemptNumber: number; atMs: number; delayMs: number };

/**
 * Decides what follows attempt `attemptNumber` (1-based) of a message, from its classification and the
 * schedule. A message the receiver aborted goes to the dead letters rather than vanishing, so an operator can
 * still re-send it after the receiver is fixed.
 */
export function decideOutcome(
  classification: Classification,
  attemptNumber: number,
  nowMs: number,
  schedule: RetrySchedule,
  random?: () => number,
): Outcome {
  switch (classification.kind) {
    case 'success':
      return { action: 'delivered' };
    case 'endpoint_gone':
      return { action: 'disable_endpoint' };
    case 'aborted':
      return { action: 'dead_letter', reason: 'aborted_by_receiver' };
    case 'failure': {
      const next = nextAttempt(schedule, attemptNumber, nowMs, {
        retryAfterMs: classification.retryAfterMs,
        ...(random ? { random } : {}),
      });
      if (next.kind === 'exhausted') return { action: 'dead_letter', reason: 'exhausted' };
      return { action: 'retry', attemptNumber: next.attemptNumber, atMs: next.atMs, delayMs: next.delayMs };
    }
  }
}

/**
 * Whether an attempt counts against the endpoint's health (circuit breaker, the 5-day disable rule). An abort
 * does not: the receiver answered and deliberately refused that one message.
 */
export function isEndpointFailure(classification: Classification): boolean {
  return classification.kind === 'failure' || classification.kind === 'endpoint_gone';
}
