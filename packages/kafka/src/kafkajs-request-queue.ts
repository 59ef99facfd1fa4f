import { createRequire } from 'node:module';
import path from 'node:path';

/** The part of kafkajs's (internal) RequestQueue the fix touches. */
interface RequestQueuePrototype {
  pending: unknown[];
  scheduleCheckPendingRequests(this: RequestQueuePrototype): void;
  [fixed]?: true;
}

const fixed = Symbol.for('ampflow.kafkajs.requestQueueTimerFixed');

/** kafkajs's RequestQueue class (one per broker connection), from the kafkajs this package loads. */
export function kafkajsRequestQueue(): { prototype: RequestQueuePrototype } {
  const load = createRequire(__filename);
  const root = path.dirname(load.resolve('kafkajs/package.json'));
  return load(path.join(root, 'src', 'network', 'requestQueue')) as { prototype: RequestQueuePrototype };
}

/**
 * kafkajs 2.2.4 keeps a 1 ms timer running on every broker connection for as long as it is open:
 * `scheduleCheckPendingRequests` arms `setTimeout(check, throttledUntil - now)`, a negative delay when nothing
 * is throttled (Node runs it after 1 ms and warns `TimeoutNegativeWarning` once), and the check arms the next.
 * That is a thousand wake-ups a second per connection: about 2 % of a core for an idle service on this machine
 * (docs/consumer.md). The check only matters while requests wait in `pending` (throttled by the broker, or over
 * the in-flight limit): a request entering `pending` arms it again, and every response checks the queue. So
 * nothing is armed while nothing is pending. Idempotent; `createKafka` applies it.
 */
export function fixKafkajsRequestQueueTimer(): void {
  const { prototype } = kafkajsRequestQueue();
  if (prototype[fixed] || typeof prototype.scheduleCheckPendingRequests !== 'function') return;
  const schedule = prototype.scheduleCheckPendingRequests;
  prototype.scheduleCheckPendingRequests = function scheduleWhilePending() {
    if (this.pending.length === 0) return;
    schedule.call(this);
  };
  prototype[fixed] = true;
}
