import type { ConsumedRecord } from './consumer-runner';
import { createOrderedQueue, type ConsumerOrdering } from './ordered-queue';

function aRecord(offset: number, key: string | null): ConsumedRecord {
  return {
    topic: 'raw',
    partition: 0,
    message: {
      key: key === null ? null : Buffer.from(key),
      value: Buffer.from(`v-${offset}`),
      headers: {},
      offset: String(offset),
      timestamp: '0',
      attributes: 0,
    },
  };
}

/** A queue holding records `keys[i]` at offset i. */
function aQueue(ordering: ConsumerOrdering, keys: Array<string | null>, maxChunkRecords = 10) {
  const queue = createOrderedQueue(ordering, maxChunkRecords);
  keys.forEach((key, offset) => queue.push(aRecord(offset, key)));
  return queue;
}

const offsets = (records: ConsumedRecord[]) => records.map((r) => Number(r.message.offset));

describe('ordered queue', () => {
  it('partition: hands out one chunk at a time, the next once the previous one is settled', () => {
    const queue = aQueue('partition', ['a', 'b', 'c', 'd', 'e'], 2);
    const first = queue.next();
    expect(offsets(first)).toEqual([0, 1]);
    expect(queue.next()).toEqual([]);
    queue.settle(first);
    const second = queue.next();
    expect(offsets(second)).toEqual([2, 3]);
    queue.settle(second);
    expect(offsets(queue.next())).toEqual([4]);
    expect(queue.waiting).toBe(0);
    expect(queue.handedOut).toBe(1);
  });

  it('key: overlaps chunks whose keys are not in flight, and holds a key back until its records settle', () => {
    const queue = aQueue('key', ['a', 'b', 'a', 'c', 'd'], 2);
    const first = queue.next();
    expect(offsets(first)).toEqual([0, 1]);
    // Offset 2 has key a, which is in flight: nothing after it starts either (offset order is kept).
    expect(queue.next()).toEqual([]);
    queue.settle([first[1]!]);
    expect(queue.next()).toEqual([]);
    queue.settle([first[0]!]);
    const second = queue.next();
    expect(offsets(second)).toEqual([2, 3]);
    // d is not in flight: it starts while a and c are.
    expect(offsets(queue.next())).toEqual([4]);
    expect(queue.handedOut).toBe(3);
  });

  it('key: records of one key in one chunk go together, and records without a key are ordered together', () => {
    const queue = aQueue('key', ['a', 'a', null, 'b', null], 3);
    const first = queue.next();
    expect(offsets(first)).toEqual([0, 1, 2]);
    expect(offsets(queue.next())).toEqual([3]);
    expect(queue.next()).toEqual([]);
    queue.settle(first);
    expect(offsets(queue.next())).toEqual([4]);
  });

  it('unordered: hands out every chunk at once, whatever is in flight', () => {
    const queue = aQueue('unordered', ['a', 'a', 'a', 'a', 'a'], 2);
    expect([offsets(queue.next()), offsets(queue.next()), offsets(queue.next())]).toEqual([
      [0, 1],
      [2, 3],
      [4],
    ]);
    expect(queue.next()).toEqual([]);
    expect(queue.handedOut).toBe(5);
  });

  it('keeps offset order over many records pushed while others are handed out', () => {
    const queue = createOrderedQueue('unordered', 500);
    const seen: number[] = [];
    for (let offset = 0; offset < 10_000; offset += 1) {
      queue.push(aRecord(offset, `k${offset % 7}`));
      if (offset % 300 === 0) seen.push(...offsets(queue.next()));
    }
    for (let chunk = queue.next(); chunk.length > 0; chunk = queue.next()) seen.push(...offsets(chunk));
    expect(seen).toEqual(Array.from({ length: 10_000 }, (_, i) => i));
  });
});
