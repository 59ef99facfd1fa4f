import { isPermanent } from './errors';

/**
 * The one retry policy: exponential backoff with AWS's "full jitter"
 * (`delay = random(0, min(maxDelayMs, baseDelayMs * 2^attempt))`), so that many clients failing together do not
 * retry together. Optionally bounded by a number of attempts and by a deadline.
 */
export interface RetryPolicy {
  /** Ceiling of the first retry's delay, in ms. */
  readonly baseDelayMs: number;
  /** No delay exceeds this, in ms. */
  readonly maxDelayMs: number;
  /** Attempts in all, the first one included; `Infinity` when unbounded. */
  readonly maxAttempts: number;
  /** Time budget from the first attempt, in ms; no wait is started that would end after it. */
  readonly deadlineMs: number | undefined;
  /**
   * The wait before retry number `attempt` (0 is the wait after the first failure), in ms: uniform in
   * `[0, ceilingMs(attempt))`. Pure apart from the injected random source.
   */
  delayMs(attempt: number): number;
  /** The upper bound of {@link RetryPolicy.delayMs} before jitter: `min(maxDelayMs, baseDelayMs * 2^attempt)`. */
  ceilingMs(attempt: number): number;
  /** The policy's clock, in ms since the epoch (injected in tests). */
  now(): number;
}

export interface RetryPolicyOptions {
  /** Default 100 ms. */
  baseDelayMs?: number;
  /** Default 30 000 ms. */
  maxDelayMs?: number;
  /** Attempts in all, the first one included. Default unbounded. */
  maxAttempts?: number;
  /** Time budget from the first attempt, in ms. Default none. */
  deadlineMs?: number;
  /** Uniform in [0, 1). Default `Math.random`. */
  random?: () => number;
  /** Default `Date.now`. */
  now?: () => number;
}

export function createRetryPolicy(options: RetryPolicyOptions = {}): RetryPolicy {
  const baseDelayMs = options.baseDelayMs ?? 100;
  const maxDelayMs = options.maxDelayMs ?? 30_000;
  const maxAttempts = options.maxAttempts ?? Infinity;
  if (!(baseDelayMs > 0) || !(maxDelayMs >= baseDelayMs)) {
    throw new RangeError(
      `retry policy needs 0 < baseDelayMs <= maxDelayMs (got ${baseDelayMs}, ${maxDelayMs})`,
    );
  }
  if (!(maxAttempts >= 1)) throw new RangeError(`retry policy needs maxAttempts >= 1 (got ${maxAttempts})`);
  const random = options.random ?? Math.random;
  const ceilingMs = (attempt: number) =>
    // 2^attempt overflows to Infinity for large attempts; min() keeps the cap.
    Math.min(maxDelayMs, baseDelayMs * 2 ** Math.max(0, attempt));
  return {
    baseDelayMs,
    maxDelayMs,
    maxAttempts,
    deadlineMs: options.deadlineMs,
    ceilingMs,
    delayMs: (attempt) => Math.floor(random() * ceilingMs(attempt)),
    now: options.now ?? Date.now,
  };
}

export interface RetryInfo {
  error: unknown;
  /** Attempts made so far (1 after the first failure). */
  attempt: number;
  /** The wait before the next attempt, in ms. */
  delayMs: number;
}

export interface RetryOptions {
  policy: RetryPolicy;
  /**
   * Whether `error` is worth another attempt (the attempt count is 1 after the first failure).
   * Default: anything but a permanent {@link AppError} (see {@link isPermanent}).
   */
  shouldRetry?: (error: unknown, attempt: number) => boolean;
  /** Aborting stops the retries: a wait in progress ends and the last error is thrown. */
  signal?: AbortSignal;
  /** Checked before each wait; true stops the retries like an aborted `signal`. */
  isStopped?: () => boolean;
  /** Called before each wait (for logs and metrics). */
  onRetry?: (info: RetryInfo) => void;
  /** Waits `ms` or until `signal` aborts. Default a timer; tests inject one that advances their clock. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/**
 * Runs `task` until it resolves, retrying failures under `policy`. Throws the last error when it is not worth
 * retrying, when the attempts or the deadline are used up, or when the caller stopped.
 * `task` receives the attempt number, starting at 1.
 */
export async function retry<T>(task: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const { policy, signal } = options;
  const shouldRetry = options.shouldRetry ?? ((error: unknown) => !isPermanent(error));
  const sleep = options.sleep ?? abortableSleep;
  const startedAt = policy.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await task(attempt);
    } catch (error) {
      if (attempt >= policy.maxAttempts || !shouldRetry(error, attempt)) throw error;
      if (signal?.aborted || options.isStopped?.()) throw error;
      const delayMs = policy.delayMs(attempt - 1);
      if (policy.deadlineMs !== undefined && policy.now() + delayMs - startedAt > policy.deadlineMs)
        throw error;
      options.onRetry?.({ error, attempt, delayMs });
      await sleep(delayMs, signal);
      if (signal?.aborted || options.isStopped?.()) throw error;
    }
  }
}

/** Resolves after `ms`, or at once when `signal` aborts (the caller decides what an abort means). */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
