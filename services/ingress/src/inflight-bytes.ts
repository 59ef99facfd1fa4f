import type { IncomingHttpHeaders } from 'node:http';
import { AppError } from '@ampflow/runtime';

/**
 * A budget of request-body bytes the ingress holds at once. Bodies stay in memory from the first byte read
 * until the answer (which waits for Kafka), so under a burst of large webhooks this is what bounds the heap.
 */
export interface ByteBudget {
  /** The bound, in bytes. */
  readonly limitBytes: number;
  /** Takes `bytes` from the budget when they fit; false (and nothing taken) when they do not. */
  tryReserve(bytes: number): boolean;
  /** Gives back bytes taken by {@link tryReserve}. */
  release(bytes: number): void;
  /** Bytes currently reserved. */
  inUseBytes(): number;
}

export function createByteBudget(limitBytes: number): ByteBudget {
  if (!(limitBytes > 0)) throw new Error(`the in-flight byte limit must be positive, got ${limitBytes}`);
  let inUse = 0;
  return {
    limitBytes,
    tryReserve(bytes) {
      if (inUse + bytes > limitBytes) return false;
      inUse += bytes;
      return true;
    },
    release(bytes) {
      inUse = Math.max(0, inUse - bytes);
    },
    inUseBytes: () => inUse,
  };
}

/**
 * The bytes a request's body will occupy once read, decided from its headers before anything is read:
 * - `content-length` when the body is sent as is;
 * - the whole body limit when the length is not declared (chunked) or the body is compressed (what it
 *   inflates to is only bounded by the body limit). Counting chunked bytes as they arrive would mean tapping
 *   the stream beside the body parser and, once over budget, cutting the upload without an answer; reserving
 *   the worst case up front keeps the refusal a clean 503 before any byte is read. Providers send a length.
 * - 0 when there is nothing to hold: no body, or a declared length over the body limit (the body parser
 *   answers 413 without buffering it, discarding the bytes as they come).
 */
export function bodyReservationBytes(headers: IncomingHttpHeaders, bodyLimitBytes: number): number {
  const encoding = headers['content-encoding']?.trim().toLowerCase();
  const compressed = encoding !== undefined && encoding !== '' && encoding !== 'identity';
  const declared = headers['content-length'];
  if (declared === undefined) {
    // No length and no chunked framing: HTTP/1.1 says there is no body.
    return headers['transfer-encoding'] === undefined ? 0 : bodyLimitBytes;
  }
  const length = Number(declared);
  if (!Number.isSafeInteger(length) || length < 0) return bodyLimitBytes; // Node refuses these anyway
  if (length === 0) return 0;
  if (compressed) return bodyLimitBytes;
  return length > bodyLimitBytes ? 0 : length;
}

/** The 503 for a request that would take the bytes in flight over the bound; providers retry it. */
export class IngressBusyError extends AppError {
  constructor(limitBytes: number) {
    super('ingress_busy', `more than ${limitBytes} bytes of requests are in flight; retry later`, true, 503);
  }
}

/** What {@link admitBody} needs of a response: to know when it is done with the body. */
interface Finishable {
  once(event: 'finish' | 'close', listener: () => void): unknown;
}

/**
 * Middleware for the webhook routes, placed before the body is read: reserves the request's bytes in
 * `budget`, or passes an {@link IngressBusyError} on (answered 503 with `retry-after`, body unread). The
 * reservation is returned when the response finishes or the connection closes, whichever comes first.
 */
export function admitBody(
  budget: ByteBudget,
  options: { bodyLimitBytes: () => number; onRefused: () => void },
) {
  return (req: { headers: IncomingHttpHeaders }, res: Finishable, next: (err?: unknown) => void): void => {
    const bytes = bodyReservationBytes(req.headers, options.bodyLimitBytes());
    if (bytes === 0) return next();
    if (!budget.tryReserve(bytes)) {
      options.onRefused();
      return next(new IngressBusyError(budget.limitBytes));
    }
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      budget.release(bytes);
    };
    res.once('finish', release);
    res.once('close', release);
    next();
  };
}
