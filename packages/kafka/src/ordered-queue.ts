import type { ConsumedRecord } from './consumer-runner';

/**
 * In what order the records of one partition are handled (Confluent parallel-consumer's `ProcessingOrder`).
 * Whatever the order, records are fetched ahead of the handler (up to the consumer's in-flight bound) and the
 * committed offset is the one after the longest finished prefix.
 * - `partition`: one chunk at a time, in offset order; a chunk starts once the one before it is done (its
 *   outputs acknowledged). For handlers that keep state across records (the session aggregator).
 * - `key`: in offset order per record key. A chunk starts while earlier chunks are still in flight as long as
 *   none of its keys is among theirs: a stateless handler's next chunk is mapped while the previous one's
 *   outputs wait for their acknowledgement, and two records of one key are never in flight in two chunks.
 * - `unordered`: chunks are taken in offset order and finish in any order (the notifier: a slow endpoint's
 *   delivery does not hold up a fast one's), up to the in-flight bound.
 */
export type ConsumerOrdering = 'partition' | 'key' | 'unordered';

/**
 * The records of one partition waiting for the handler, and which of them may start now. Records are pushed in
 * offset order; `next` hands out the longest run from the head that the ordering allows (at most
 * `maxChunkRecords`); `settle` returns records handed out earlier, finished or let go. Pure: no I/O, no timers.
 */
export interface OrderedQueue {
  push(record: ConsumedRecord): void;
  /** The next chunk that may start now, in offset order; empty when none may (wait for a `settle`). */
  next(): ConsumedRecord[];
  settle(records: ConsumedRecord[]): void;
  /** Records pushed and not handed out yet. */
  readonly waiting: number;
  /** Records handed out and not settled. */
  readonly handedOut: number;
}

/** The key records are ordered by (a record without a key is ordered with the others without one). */
const keyOf = (record: ConsumedRecord): string => record.message.key?.toString('latin1') ?? '';

export function createOrderedQueue(ordering: ConsumerOrdering, maxChunkRecords: number): OrderedQueue {
  let queue: ConsumedRecord[] = [];
  let head = 0;
  let handedOut = 0;
  /** Keys of the records handed out and not settled, with their counts (`key` ordering only). */
  const keysOut = new Map<string, number>();

  function allowed(): number {
    const count = Math.min(maxChunkRecords, queue.length - head);
    if (ordering === 'partition') return handedOut > 0 ? 0 : count;
    if (ordering === 'unordered' || keysOut.size === 0) return count;
    let n = 0;
    while (n < count && !keysOut.has(keyOf(queue[head + n]!))) n += 1;
    return n;
  }

  return {
    get waiting() {
      return queue.length - head;
    },
    get handedOut() {
      return handedOut;
    },
    push(record) {
      queue.push(record);
    },
    next() {
      const count = allowed();
      if (count === 0) return [];
      const chunk = queue.slice(head, head + count);
      head += count;
      // Drop what was handed out now and then, so the array does not grow without bound.
      if (head === queue.length) {
        queue = [];
        head = 0;
      } else if (head > 4_096) {
        queue = queue.slice(head);
        head = 0;
      }
      handedOut += chunk.length;
      if (ordering === 'key') {
        for (const record of chunk) {
          const key = keyOf(record);
          keysOut.set(key, (keysOut.get(key) ?? 0) + 1);
        }
      }
      return chunk;
    },
    settle(records) {
      handedOut -= records.length;
      if (ordering !== 'key') return;
      for (const record of records) {
        const key = keyOf(record);
        const left = (keysOut.get(key) ?? 1) - 1;
        if (left <= 0) keysOut.delete(key);
        else keysOut.set(key, left);
      }
    },
  };
}
