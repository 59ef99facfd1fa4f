/**
 * Two timer fixes in kafkajs 2.2.4's per-connection request queue (`kafkajs/src/network/requestQueue`), applied
 * once when this module loads. kafkajs is pinned to that exact version (package.json) and no longer released, so
 * the patch targets code that cannot move under it; `request-queue-timers.test.ts` fails if its shape changes.
 *
 * 1. The request-timeout check. kafkajs starts, for every broker connection, a `setInterval` every
 *    min(requestTimeout, 100 ms) for the connection's whole life, requests in flight or not. A service holds a
 *    dozen connections (producer, consumers, admin, one per broker each), so an idle service woke ~100 times a
 *    second for nothing: most of its idle CPU. Here the check runs only while the queue has requests in flight,
 *    every requestTimeout / 10 (at least 100 ms, at most 1 s): a request still times out, at most a tenth of its
 *    timeout late, and an idle connection costs no timer at all.
 * 2. The pending-requests check. After every answer kafkajs scheduled a timer at `throttledUntil - now`, negative
 *    when no throttle is in effect (Node warns `TimeoutNegativeWarning` and fires it after 1 ms), even with no
 *    request waiting. Here it is scheduled only when requests wait, as kafkajs's own comment intends.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const RequestQueue = require('kafkajs/src/network/requestQueue') as RequestQueueClass;

interface SocketRequestLike {
  sentAt: number | null;
  requestTimeout: number;
  timeoutRequest(): void;
}

interface RequestQueueLike {
  enforceRequestTimeout: boolean;
  requestTimeout: number;
  inflight: Map<number, SocketRequestLike>;
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: ReturnType<typeof setTimeout> | null;
  requestTimeoutIntervalId?: ReturnType<typeof setInterval> | null;
  isConnected(): boolean;
  destroy(): void;
  checkPendingRequests(): void;
  sendSocketRequest(request: SocketRequestLike): void;
  scheduleRequestTimeoutCheck(): void;
  scheduleCheckPendingRequests(): void;
  [TIMEOUT_CHECK]?: boolean;
}

interface RequestQueueClass {
  prototype: RequestQueueLike;
  [PATCHED]?: boolean;
}

const PATCHED = Symbol.for('ampflow.kafkajs.requestQueueTimers');
/** Set on a queue once its connection asked for request timeouts to be enforced. */
const TIMEOUT_CHECK = Symbol('ampflow.timeoutCheck');
/** kafkajs's own delay before it looks again at requests held back by a throttle or the in-flight limit. */
const CHECK_PENDING_REQUESTS_INTERVAL_MS = 10;

/** How often a queue with requests in flight looks for timed-out ones: a tenth of the timeout, 100 ms to 1 s. */
export function timeoutCheckPeriodMs(requestTimeoutMs: number): number {
  return Math.min(1_000, Math.max(100, Math.floor(requestTimeoutMs / 10)));
}

function armTimeoutCheck(queue: RequestQueueLike): void {
  if (!queue[TIMEOUT_CHECK] || queue.requestTimeoutIntervalId) return;
  const interval = setInterval(() => {
    const now = Date.now();
    for (const request of queue.inflight.values()) {
      if (request.sentAt !== null && now - request.sentAt > request.requestTimeout) request.timeoutRequest();
    }
    if (!queue.isConnected()) {
      queue.destroy();
      return;
    }
    if (queue.inflight.size === 0) {
      clearInterval(interval);
      queue.requestTimeoutIntervalId = null;
    }
  }, timeoutCheckPeriodMs(queue.requestTimeout));
  interval.unref?.();
  queue.requestTimeoutIntervalId = interval;
}

function patch(): void {
  if (RequestQueue[PATCHED]) return;
  const proto = RequestQueue.prototype;
  for (const method of ['scheduleRequestTimeoutCheck', 'scheduleCheckPendingRequests', 'sendSocketRequest', 'destroy']) {
    if (typeof (proto as unknown as Record<string, unknown>)[method] !== 'function') {
      throw new Error(`kafkajs RequestQueue has no ${method}(): the request-queue timer patch does not fit this kafkajs`);
    }
  }
  const sendSocketRequest = proto.sendSocketRequest;
  const destroy = proto.destroy;

  proto.scheduleRequestTimeoutCheck = function (this: RequestQueueLike) {
    if (!this.enforceRequestTimeout) return;
    this.destroy();
    this[TIMEOUT_CHECK] = true;
    if (this.inflight.size > 0) armTimeoutCheck(this);
  };

  proto.sendSocketRequest = function (this: RequestQueueLike, request: SocketRequestLike) {
    sendSocketRequest.call(this, request);
    if (this.inflight.size > 0) armTimeoutCheck(this);
  };

  proto.destroy = function (this: RequestQueueLike) {
    destroy.call(this);
    this.requestTimeoutIntervalId = null;
  };

  proto.scheduleCheckPendingRequests = function (this: RequestQueueLike) {
    if (this.throttleCheckTimeoutId || this.pending.length === 0) return;
    const throttledFor = this.throttledUntil - Date.now();
    this.throttleCheckTimeoutId = setTimeout(
      () => {
        this.throttleCheckTimeoutId = null;
        this.checkPendingRequests();
      },
      throttledFor > 0 ? throttledFor : CHECK_PENDING_REQUESTS_INTERVAL_MS,
    );
  };
  RequestQueue[PATCHED] = true;
}

patch();
