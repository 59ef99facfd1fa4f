/**
 * Delay before each attempt, ms, like Svix's: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h. Entry `i`
 * is the wait before attempt `i + 1`, counted from the previous attempt's failure: 8 attempts over about 27.6 h.
 */
export const DEFAULT_RETRY_SCHEDULE_MS: readonly number[] = [
  0,
  5_000,
  5 * 60_000,
  30 * 60_000,
  2 * 3_600_000,
  5 * 3_600_000,
  10 * 3_600_000,
  10 * 3_600_000,
];

/** ±20 %: spreads the retries of many messages that failed together (an endpoint outage) over time. */
export const DEFAULT_JITTER_RATIO = 0.2;

/** Longest wait a `Retry-After` may ask for (1 h); beyond it the receiver is not trusted to come back. */
export const DEFAULT_RETRY_AFTER_MAX_MS = 3_600_000;

export interface RetrySchedule {
  /** Delay before each attempt, ms; entry 0 is the first attempt's (normally 0). */
  delaysMs: readonly number[];
  /** Each delay is multiplied by a uniform factor in [1 - ratio, 1 + ratio]. Default {@link DEFAULT_JITTER_RATIO}. */
  jitterRatio: number;
  /** Cap on a honoured `Retry-After`, ms. Default {@link DEFAULT_RETRY_AFTER_MAX_MS}. */
  retryAfterMaxMs: number;
}

export function retrySchedule(options: Partial<RetrySchedule> = {}): RetrySchedule {
  const schedule = {
    delaysMs: options.delaysMs ?? DEFAULT_RETRY_SCHEDULE_MS,
    jitterRatio: options.jitterRatio ?? DEFAULT_JITTER_RATIO,
    retryAfterMaxMs: options.retryAfterMaxMs ?? DEFAULT_RETRY_AFTER_MAX_MS,
  };
  if (schedule.delaysMs.length === 0) throw new Error('a retry schedule needs at least one attempt');
  if (schedule.delaysMs.some((d) => !Number.isFinite(d) || d < 0)) throw new Error('delays must be >= 0 ms');
  if (!(schedule.jitterRatio >= 0 && schedule.jitterRatio < 1))
    throw new Error('jitterRatio must be in [0, 1)');
  return schedule;
}

export type NextAttempt =
  | {
      kind: 'retry';
      /** The number of the attempt to make (2 for the first retry). */
      attemptNumber: number;
      /** When to make it, epoch ms. */
      atMs: number;
      delayMs: number;
      /** True when a `Retry-After` lengthened the scheduled delay. */
      retryAfterApplied: boolean;
    }
  | { kind: 'exhausted'; attempts: number };

/**
 * When to try again after attempt `failedAttempt` (1-based) failed at `nowMs`, or `exhausted` once every
 * attempt of the schedule was made. A `Retry-After` (from 429/503, ms) can only lengthen the wait: the delay is
 * max(jittered step, min(retryAfterMs, retryAfterMaxMs)), so a receiver cannot make us retry faster than the
 * schedule nor park a message for days; it still counts as one attempt, which keeps the total bounded.
 *
 * @param random a uniform source in [0, 1), injected by tests; default Math.random
 */
export function nextAttempt(
  schedule: RetrySchedule,
  failedAttempt: number,
  nowMs: number,
  options: { retryAfterMs?: number | undefined; random?: () => number } = {},
): NextAttempt {
  const step = schedule.delaysMs[failedAttempt];
  if (step === undefined) return { kind: 'exhausted', attempts: failedAttempt };
  const random = options.random ?? Math.random;
  const jittered = Math.round(step * (1 + schedule.jitterRatio * (2 * random() - 1)));
  const retryAfter =
    options.retryAfterMs === undefined
      ? 0
      : Math.min(Math.max(0, options.retryAfterMs), schedule.retryAfterMaxMs);
  const delayMs = Math.max(jittered, retryAfter);
  return {
    kind: 'retry',
    attemptNumber: failedAttempt + 1,
    atMs: nowMs + delayMs,
    delayMs,
    retryAfterApplied: retryAfter > jittered,
  };
}

/**
 * A `Retry-After` header in ms from `nowMs`: delta-seconds (`120`) or an HTTP-date
 * (`Wed, 21 Oct 2026 07:28:00 GMT`, also the obsolete RFC 850 and asctime forms that Date.parse reads).
 * A date in the past is 0. Anything else (negative, fractional, empty, garbage) is undefined: ignored.
 */
export function parseRetryAfter(header: string | null | undefined, nowMs: number): number | undefined {
  if (header === null || header === undefined) return undefined;
  const value = header.trim();
  if (/^\d+$/.test(value)) {
    const seconds = Number(value);
    return Number.isSafeInteger(seconds * 1000) ? seconds * 1000 : Number.MAX_SAFE_INTEGER;
  }
  // HTTP-dates start with a day name; requiring one keeps Date.parse from accepting bare numbers like "-5".
  if (!/^[A-Za-z]{3}/.test(value)) return undefined;
  const at = Date.parse(value);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}

/**
 * Parses a schedule such as `0,5s,5m,30m,2h,5h,10h,10h` (NOTIFIER_RETRY_SCHEDULE) into ms. Units: `ms`, `s`,
 * `m`, `h`, `d`; a bare number is ms (so tests can write `0,50,100`). Throws on anything else.
 */
export function parseDurationList(text: string): number[] {
  const units: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  const parts = text.split(',').map((p) => p.trim());
  if (parts.length === 0 || parts.some((p) => p === '')) throw new Error('expected a comma-separated list');
  return parts.map((part) => {
    const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(part);
    if (!match) throw new Error(`"${part}" is not a duration like 500ms, 5s, 5m, 2h or 1d`);
    return Math.round(Number(match[1]) * units[match[2] ?? 'ms']!);
  });
}
