/**
 * Which offsets of one partition may be committed while its records finish out of order. Records are taken in
 * offset order and finish in any order (a slow endpoint's delivery finishes after a fast one's); the committable
 * offset is the one after the longest finished prefix, so a crash re-reads every record that was not finished
 * and none that was finished before everything ahead of it.
 */
export interface PartitionProgress {
  /** The offset after the last record taken (records at lower offsets are skipped when fetched again). */
  readonly nextOffset: bigint;
  /** Records taken and not finished yet. */
  readonly outstanding: number;
  /** Whether `offset` is new (not taken before). */
  isNew(offset: bigint): boolean;
  /** Takes a record; offsets must increase. */
  take(offset: bigint): void;
  finish(offset: bigint): void;
  /** The offset to commit (the first unfinished, or `nextOffset`), or null before anything was taken. */
  committable(): bigint | null;
}

export function createPartitionProgress(): PartitionProgress {
  /** Taken offsets in order, with whether each finished; the head is dropped once finished. */
  const queue: Array<{ offset: bigint; done: boolean }> = [];
  let head = 0;
  const byOffset = new Map<bigint, { offset: bigint; done: boolean }>();
  let nextOffset = -1n;
  return {
    get nextOffset() {
      return nextOffset;
    },
    get outstanding() {
      return byOffset.size;
    },
    isNew: (offset) => offset >= nextOffset,
    take(offset) {
      if (offset < nextOffset) throw new Error(`offset ${offset} taken after ${nextOffset - 1n}`);
      const entry = { offset, done: false };
      queue.push(entry);
      byOffset.set(offset, entry);
      nextOffset = offset + 1n;
    },
    finish(offset) {
      const entry = byOffset.get(offset);
      if (!entry) return;
      entry.done = true;
      byOffset.delete(offset);
      while (head < queue.length && queue[head]!.done) head += 1;
      // Compact now and then so the array does not grow without bound.
      if (head > 1_024 && head * 2 > queue.length) {
        queue.splice(0, head);
        head = 0;
      }
    },
    committable() {
      if (nextOffset < 0n) return null;
      return head < queue.length ? queue[head]!.offset : nextOffset;
    },
  };
}
