import { createRequire } from 'node:module';

interface RequestQueueInternals {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  scheduleCheckPendingRequests(): void;
}

const MARK = Symbol.for('ampflow.kafkajs.requestQueueFix');

/**
 * Stops kafkajs 2.2.4's idle timer loop. `RequestQueue.scheduleCheckPendingRequests` sets a timer of
 * `throttledUntil - Date.now()`, which is negative when nothing is throttled (`throttledUntil` is -1): Node runs
 * it after 1 ms, the check finds nothing pending and schedules itself again. So every broker connection that has
 * answered one request wakes its process about 1,000 times a second for nothing, forever (kafkajs issues
 * #1556, #1704, #1751; on Node 24 the first round also prints `TimeoutNegativeWarning`).
 *
 * The timer only matters while requests are pending (held back by the in-flight limit) or the broker throttles:
 * those cases keep kafkajs's behaviour. With nothing pending and no throttle, nothing is scheduled; a request
 * pushed later is sent at once or, if held back, schedules its own check (`push`), and every response checks the
 * queue again (`fulfillRequest`). Applied once per process, when `@ampflow/kafka` is loaded.
 */
export function installRequestQueueFix(): boolean {
  const load = createRequire(__filename);
  const RequestQueue = load('kafkajs/src/network/requestQueue') as {
    prototype: RequestQueueInternals & { [MARK]?: true };
  };
  const proto = RequestQueue.prototype;
  if (proto[MARK]) return false;
  const original = proto.scheduleCheckPendingRequests;
  proto.scheduleCheckPendingRequests = function (this: RequestQueueInternals) {
    if (this.pending.length === 0 && this.throttledUntil <= Date.now()) return;
    original.call(this);
  };
  proto[MARK] = true;
  return true;
}
