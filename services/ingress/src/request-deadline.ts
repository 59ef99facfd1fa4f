import { performance } from 'node:perf_hooks';
import { DependencyError } from '@ampflow/runtime';

/** `INGRESS_REQUEST_DEADLINE_MS` by default: below the ~10 s after which providers give up and retry. */
export const DEFAULT_REQUEST_DEADLINE_MS = 5_000;

/** What a webhook request was doing when its deadline passed; named in the 503's message. */
export type DeadlineStage = 'checking for duplicates' | 'waiting for Kafka';

/** The 503 for a webhook not stored within its deadline; providers retry it with the same event id. */
export class RequestDeadlineError extends DependencyError {
  constructor(
    readonly budgetMs: number,
    readonly stage: DeadlineStage,
  ) {
    super(
      'deadline_exceeded',
      `the webhook was not stored within the request deadline of ${budgetMs} ms (${stage}); retry later`,
    );
  }
}

/**
 * The time a webhook request has left to be answered, from its arrival (headers received): the body read,
 * verification, the duplicate check and the wait for Kafka all come out of one budget, so no answer takes
 * longer than `budgetMs` whatever step is slow.
 */
export interface RequestDeadline {
  /** The whole budget, in ms. */
  readonly budgetMs: number;
  /** Time left, in ms; 0 once past. */
  remainingMs(): number;
  expired(): boolean;
  /** The error to answer with when the deadline passed during `stage`. */
  error(stage: DeadlineStage): RequestDeadlineError;
  /**
   * Calls `listener` once the deadline passes (unless {@link clear}ed first). Every listener of a request
   * shares one timer, armed at the first call for the whole-millisecond time left, so a request costs one
   * timer whatever the number of steps it bounds, and the timers of concurrent requests share Node's list
   * for their (same) duration.
   */
  onExpiry(listener: () => void): void;
  /** The request was answered: stops the timer and forgets the listeners. */
  clear(): void;
}

/** Starts a deadline of `budgetMs` now; `nowMs` is a monotonic clock (tests give their own). */
export function startDeadline(
  budgetMs: number,
  nowMs: () => number = () => performance.now(),
): RequestDeadline {
  const expiresAt = nowMs() + budgetMs;
  const remainingMs = () => Math.max(0, expiresAt - nowMs());
  let timer: NodeJS.Timeout | undefined;
  let listeners: (() => void)[] | undefined;
  const fire = () => {
    timer = undefined;
    const due = listeners;
    listeners = undefined;
    if (due) for (const listener of due) listener();
  };
  return {
    budgetMs,
    remainingMs,
    expired: () => remainingMs() === 0,
    error: (stage) => new RequestDeadlineError(budgetMs, stage),
    onExpiry(listener) {
      (listeners ??= []).push(listener);
      // Unreferenced: the server's sockets keep the process up; a deadline alone never should.
      timer ??= setTimeout(fire, Math.ceil(remainingMs())).unref();
    },
    clear() {
      clearTimeout(timer);
      timer = undefined;
      listeners = undefined;
    },
  };
}

/**
 * Settles like `work`, or rejects with the deadline's {@link RequestDeadlineError} once the deadline passes
 * first (at once when it already has). `work` itself is not cancelled: callers that care attach to it.
 */
export function beforeDeadline<T>(
  deadline: RequestDeadline,
  work: Promise<T>,
  stage: DeadlineStage,
): Promise<T> {
  if (deadline.expired()) {
    work.catch(() => undefined); // its failure no longer has a reader
    return Promise.reject(deadline.error(stage));
  }
  return new Promise<T>((resolve, reject) => {
    work.then(resolve, reject);
    deadline.onExpiry(() => reject(deadline.error(stage)));
  });
}
