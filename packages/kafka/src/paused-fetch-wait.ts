/**
 * A short fetch wait while a consumer holds partitions paused for back-pressure: kafkajs 2.2.4's
 * `ConsumerGroup.prototype.fetch` (`kafkajs/src/consumer/consumerGroup`), patched once when this module loads.
 * kafkajs is pinned to that exact version (package.json); `paused-fetch-wait.test.ts` fails if the shape changes.
 *
 * kafkajs fetches only the partitions that are not paused, and a resumed partition joins at the next fetch. While
 * some are paused, the fetch in flight may name only idle partitions and wait the whole `maxWaitTime` at the broker
 * (with every partition paused, kafkajs sleeps that long instead of fetching), so a partition resumed meanwhile
 * waited up to `maxWaitTime` for its records: the notifier (500 ms, 78 partitions of which most are idle retry
 * tiers) stalled that long each time a busy source partition filled up, which capped it below 1,500 webhooks/s
 * with a third of a core to spare. Here a consumer that registered its member id gets, per fetch, the wait it
 * asks for (`createConsumer`: {@link PAUSED_FETCH_WAIT_MS} while a partition is paused, else its own
 * `maxWaitTime`), so a resumed partition is fetched again within that, and an idle consumer keeps its long wait.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const ConsumerGroup = require('kafkajs/src/consumer/consumerGroup') as ConsumerGroupClass;

interface ConsumerGroupLike {
  memberId: string | null;
  maxWaitTime: number;
  fetch(nodeId: number): Promise<unknown[]>;
  [BASE_WAIT]?: number;
}

interface ConsumerGroupClass {
  prototype: ConsumerGroupLike;
  [PATCHED]?: boolean;
}

const PATCHED = Symbol.for('ampflow.kafkajs.pausedFetchWait');
/** The consumer's own `maxWaitTime`, kept the first time the patch changes it. */
const BASE_WAIT = Symbol('ampflow.baseFetchWait');

/** The fetch wait while any partition of the consumer is paused for back-pressure. */
export const PAUSED_FETCH_WAIT_MS = 50;

/** Member id -> the wait its next fetch should use (undefined: its own `maxWaitTime`). */
const waits = new Map<string, () => number | undefined>();

/** Gives the member's fetches the wait `waitMs()` returns; the returned function unregisters it. */
export function registerFetchWait(memberId: string, waitMs: () => number | undefined): () => void {
  waits.set(memberId, waitMs);
  return () => {
    if (waits.get(memberId) === waitMs) waits.delete(memberId);
  };
}

/** Members registered now (for tests: a stopped consumer leaves none behind). */
export function registeredFetchWaits(): number {
  return waits.size;
}

if (!ConsumerGroup.prototype || typeof ConsumerGroup.prototype.fetch !== 'function') {
  throw new Error('kafkajs ConsumerGroup has no fetch(): the paused-fetch-wait patch does not fit this kafkajs');
}

if (!ConsumerGroup[PATCHED]) {
  ConsumerGroup[PATCHED] = true;
  const original = ConsumerGroup.prototype.fetch;
  ConsumerGroup.prototype.fetch = function fetch(this: ConsumerGroupLike, nodeId: number) {
    const waitMs = this.memberId === null ? undefined : waits.get(this.memberId);
    if (waitMs) {
      this[BASE_WAIT] ??= this.maxWaitTime;
      this.maxWaitTime = waitMs() ?? this[BASE_WAIT];
    }
    return original.call(this, nodeId);
  };
}
