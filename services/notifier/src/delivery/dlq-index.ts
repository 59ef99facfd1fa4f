/** Where one dead letter of a message sits in the deliveries DLQ. */
export interface DeadLetterPosition {
  endpointId: string;
  partition: number;
  offset: number;
}

/**
 * Per partition, the first offset still stored (the low watermark). Positions below it point at records that
 * retention has removed; a partition missing from the map is taken as starting at 0.
 */
export type LowWatermarks = ReadonlyMap<number, number>;

/**
 * The deliveries DLQ indexed by message id: for each message, the position of its latest dead letter per
 * endpoint. Holds positions only (no bodies): about 160 bytes of heap per dead letter (measured with 100,000
 * messages of 44-character ids; endpoint ids are shared).
 * Pure: the Kafka reader that feeds it and the reads at the positions are in `dlq-lookup.ts`.
 */
export interface DeadLetterIndex {
  /**
   * Notes a dead letter of `messageId` for `endpointId`. A later one for the same pair (a re-sent delivery that
   * failed again) replaces the earlier: the body is the same, and the latest record carries the latest reason.
   */
  add(messageId: string, endpointId: string, partition: number, offset: number): void;
  /**
   * The positions of `messageId`'s dead letters (only `endpointId`'s when given) that are still stored.
   * Positions below `lows` are dropped from the index on the way.
   */
  find(messageId: string, endpointId: string | undefined, lows: LowWatermarks): DeadLetterPosition[];
  /** Drops every position below `lows` (records removed by retention); returns how many were dropped. */
  prune(lows: LowWatermarks): number;
  /** Positions held. */
  readonly size: number;
  /**
   * Positions dropped to stay within `maxPositions` (not those removed by retention). While above 0, a message
   * the index does not know may still have a dead letter in the DLQ.
   */
  readonly evicted: number;
}

export interface DeadLetterIndexOptions {
  /**
   * Positions held at most (default 500,000, about 80 MiB). Past it the messages first indexed are dropped
   * first, which is roughly the DLQ's order: the oldest dead letters go.
   */
  maxPositions?: number;
}

const stored = (position: DeadLetterPosition, lows: LowWatermarks) =>
  position.offset >= (lows.get(position.partition) ?? 0);

export function createDeadLetterIndex(options: DeadLetterIndexOptions = {}): DeadLetterIndex {
  const maxPositions = options.maxPositions ?? 500_000;
  /** One position (the common case: a message dead-lettered for one endpoint) or several, per message id. */
  const byMessage = new Map<string, DeadLetterPosition | DeadLetterPosition[]>();
  /** Endpoint ids are few and repeat in every entry: one string each instead of one per dead letter. */
  const endpointIds = new Map<string, string>();
  let size = 0;
  let evicted = 0;

  const listOf = (value: DeadLetterPosition | DeadLetterPosition[] | undefined): DeadLetterPosition[] =>
    value === undefined ? [] : Array.isArray(value) ? value : [value];

  /** Keeps the positions of `messageId` that `keep` accepts; returns how many were dropped. */
  function retain(messageId: string, keep: (p: DeadLetterPosition) => boolean): number {
    const positions = listOf(byMessage.get(messageId));
    const kept = positions.filter(keep);
    const dropped = positions.length - kept.length;
    if (dropped === 0) return 0;
    size -= dropped;
    if (kept.length === 0) byMessage.delete(messageId);
    else byMessage.set(messageId, kept.length === 1 ? kept[0]! : kept);
    return dropped;
  }

  function intern(endpointId: string): string {
    const known = endpointIds.get(endpointId);
    if (known !== undefined) return known;
    endpointIds.set(endpointId, endpointId);
    return endpointId;
  }

  return {
    add(messageId, endpointId, partition, offset) {
      const value = byMessage.get(messageId);
      const same = listOf(value).find((p) => p.endpointId === endpointId);
      if (same) {
        // The same key always lands in the same partition; a different one means the topic was
        // re-partitioned, and then the record read last is the later one.
        if (same.partition !== partition || offset > same.offset) {
          same.partition = partition;
          same.offset = offset;
        }
        return;
      }
      const position = { endpointId: intern(endpointId), partition, offset };
      if (value === undefined) byMessage.set(messageId, position);
      else if (Array.isArray(value)) value.push(position);
      else byMessage.set(messageId, [value, position]);
      size += 1;
      // A Map iterates in insertion order: its first keys are the messages indexed longest ago.
      for (const [oldest, positions] of byMessage) {
        if (size <= maxPositions) break;
        const count = listOf(positions).length;
        byMessage.delete(oldest);
        size -= count;
        evicted += count;
      }
    },

    find(messageId, endpointId, lows) {
      if (!byMessage.has(messageId)) return [];
      retain(messageId, (p) => stored(p, lows));
      return listOf(byMessage.get(messageId))
        .filter((p) => endpointId === undefined || p.endpointId === endpointId)
        .map((p) => ({ ...p }));
    },

    prune(lows) {
      let dropped = 0;
      // Deleting or re-setting the entry being visited is safe while iterating a Map.
      for (const messageId of byMessage.keys()) dropped += retain(messageId, (p) => stored(p, lows));
      return dropped;
    },

    get size() {
      return size;
    },

    get evicted() {
      return evicted;
    },
  };
}
