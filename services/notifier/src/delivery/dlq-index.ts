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
 * endpoint. Holds positions only (no bodies), so an entry costs a message id, an endpoint id and two numbers.
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
}

const stored = (position: DeadLetterPosition, lows: LowWatermarks) =>
  position.offset >= (lows.get(position.partition) ?? 0);

export function createDeadLetterIndex(): DeadLetterIndex {
  const byMessage = new Map<string, DeadLetterPosition[]>();
  let size = 0;

  /** Keeps the positions of `messageId` that `keep` accepts; returns how many were dropped. */
  function retain(
    messageId: string,
    positions: DeadLetterPosition[],
    keep: (p: DeadLetterPosition) => boolean,
  ) {
    const kept = positions.filter(keep);
    const dropped = positions.length - kept.length;
    if (dropped === 0) return 0;
    size -= dropped;
    if (kept.length === 0) byMessage.delete(messageId);
    else byMessage.set(messageId, kept);
    return dropped;
  }

  return {
    add(messageId, endpointId, partition, offset) {
      const positions = byMessage.get(messageId);
      if (!positions) {
        byMessage.set(messageId, [{ endpointId, partition, offset }]);
        size += 1;
        return;
      }
      const same = positions.find((p) => p.endpointId === endpointId);
      if (!same) {
        positions.push({ endpointId, partition, offset });
        size += 1;
      } else if (same.partition !== partition || offset > same.offset) {
        // The same key always lands in the same partition; a different one means the topic was re-partitioned,
        // and then the record read last is the later one.
        same.partition = partition;
        same.offset = offset;
      }
    },

    find(messageId, endpointId, lows) {
      const positions = byMessage.get(messageId);
      if (!positions) return [];
      retain(messageId, positions, (p) => stored(p, lows));
      return (byMessage.get(messageId) ?? [])
        .filter((p) => endpointId === undefined || p.endpointId === endpointId)
        .map((p) => ({ ...p }));
    },

    prune(lows) {
      let dropped = 0;
      for (const [messageId, positions] of byMessage)
        dropped += retain(messageId, positions, (p) => stored(p, lows));
      return dropped;
    },

    get size() {
      return size;
    },
  };
}
