/** Where a record sits in Kafka and what it carried besides its value. */
export interface RecordPosition {
  topic: string;
  partition: number;
  offset: string;
  /** The Kafka record timestamp, epoch ms. */
  timestampMs: number;
  key: string | null;
  headers: Record<string, string>;
}

export type IndexedKind = 'raw' | 'canonical' | 'session' | 'dead-letter';

/** One record the console keeps, with the ids it is found by. */
export interface IndexedRecord extends RecordPosition {
  kind: IndexedKind;
  /** The topic without `KAFKA_TOPIC_PREFIX`, e.g. `ev.vehicle-telemetry.v1`. */
  stream: string;
  /**
   * The canonical event id `<provider>:<provider event id>` of the provider delivery the record belongs to
   * (raw records: from their `provider` and `event-id` headers); null for session changes, which no single
   * provider event names.
   */
  traceId: string | null;
  /** Canonical vehicle ids the record is about. */
  vehicleIds: string[];
  /** The decoded value (canonical and session records) or the body text (raw records), before redaction. */
  value: unknown;
  /** What holding the record costs, estimated by whoever read it (bytes), for {@link TraceIndexOptions.maxBytes}. */
  approxBytes: number;
}

export interface TraceIndexOptions {
  /** Records kept at most; the oldest inserted go first. */
  maxEvents: number;
  /** Records whose Kafka timestamp is older than this are dropped at the next {@link TraceIndex.evictExpired}. */
  maxAgeMs: number;
  /** Estimated bytes held at most (the sum of the records' `approxBytes`); the oldest go first (default none). */
  maxBytes?: number;
  /** Called once per evicted record, with why. */
  onEvict?: (reason: EvictReason) => void;
}

export type EvictReason = 'count' | 'age' | 'bytes';

/**
 * The bounded trace index: records of the raw, canonical, session and dead-letter topics, found by provider
 * event id and by vehicle. Everything in it is rebuilt by reading the topics again, so it is never persisted.
 * Eviction is first in, first out (insertion order, which is each partition's order): by count and by
 * estimated bytes at every insertion, by age at {@link TraceIndex.evictExpired}. Adding the same topic/partition/offset twice keeps
 * one copy (a consumer restarted over the same range).
 */
export interface TraceIndex {
  add(record: IndexedRecord): boolean;
  /** Records of one provider event, in insertion order. */
  byTraceId(traceId: string): IndexedRecord[];
  /** The newest `limit` distinct trace ids of a vehicle, newest first (by first sighting, then insertion). */
  traceIdsOfVehicle(vehicleId: string, limit: number): string[];
  /** Every record of a vehicle on `stream`, in insertion order. */
  recordsOfVehicle(vehicleId: string, stream: string): IndexedRecord[];
  /** Drops the records older than `nowMs - maxAgeMs` from the front; returns how many. */
  evictExpired(nowMs: number): number;
  size(): number;
  /** The sum of the held records' `approxBytes`. */
  bytes(): number;
  /** Kafka timestamp of the oldest record held, or null when empty. */
  oldestTimestampMs(): number | null;
}

/** A FIFO of numbers with O(1) push and shift (an array with a moving head, compacted now and then). */
class Fifo {
  private items: number[] = [];
  private head = 0;
  push(n: number) {
    this.items.push(n);
  }
  peek(): number | undefined {
    return this.items[this.head];
  }
  shift(): number | undefined {
    const n = this.items[this.head];
    if (n === undefined) return undefined;
    this.head += 1;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return n;
  }
  get length() {
    return this.items.length - this.head;
  }
  values(): number[] {
    return this.items.slice(this.head);
  }
}

export function createTraceIndex(options: TraceIndexOptions): TraceIndex {
  if (options.maxEvents < 1) throw new Error('maxEvents must be at least 1');
  const records = new Map<number, IndexedRecord>();
  const positions = new Map<string, number>();
  const order = new Fifo();
  const byTrace = new Map<string, number[]>();
  const byVehicle = new Map<string, Fifo>();
  let next = 0;
  let heldBytes = 0;
  const maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;

  const positionOf = (r: RecordPosition) => `${r.topic}\u0000${r.partition}\u0000${r.offset}`;

  function evictOne(reason: EvictReason) {
    const seq = order.shift();
    if (seq === undefined) return;
    const record = records.get(seq)!;
    records.delete(seq);
    heldBytes -= record.approxBytes;
    positions.delete(positionOf(record));
    if (record.traceId !== null) {
      const list = byTrace.get(record.traceId);
      // Insertion order: the evicted record is the oldest of its trace.
      if (list) {
        list.shift();
        if (list.length === 0) byTrace.delete(record.traceId);
      }
    }
    for (const vehicleId of new Set(record.vehicleIds)) {
      const list = byVehicle.get(vehicleId);
      if (!list) continue;
      list.shift();
      if (list.length === 0) byVehicle.delete(vehicleId);
    }
    options.onEvict?.(reason);
  }

  return {
    add(record) {
      const position = positionOf(record);
      if (positions.has(position)) return false;
      const seq = next++;
      records.set(seq, record);
      heldBytes += record.approxBytes;
      positions.set(position, seq);
      order.push(seq);
      if (record.traceId !== null) {
        const list = byTrace.get(record.traceId);
        if (list) list.push(seq);
        else byTrace.set(record.traceId, [seq]);
      }
      for (const vehicleId of new Set(record.vehicleIds)) {
        let list = byVehicle.get(vehicleId);
        if (!list) byVehicle.set(vehicleId, (list = new Fifo()));
        list.push(seq);
      }
      while (order.length > options.maxEvents) evictOne('count');
      // Never the record just added: one oversized record is held alone rather than not at all.
      while (heldBytes > maxBytes && order.length > 1) evictOne('bytes');
      return true;
    },

    byTraceId: (traceId) => (byTrace.get(traceId) ?? []).map((seq) => records.get(seq)!),

    traceIdsOfVehicle(vehicleId, limit) {
      // Newest first by when the platform first saw the event (its earliest record's Kafka timestamp: the
      // raw record's, written by the ingress), then by insertion: topics are read in no fixed order.
      const ids = new Set<string>();
      for (const seq of byVehicle.get(vehicleId)?.values() ?? []) {
        const id = records.get(seq)!.traceId;
        if (id !== null) ids.add(id);
      }
      const keyed = [...ids].map((id) => {
        const seqs = byTrace.get(id)!;
        let first = Number.POSITIVE_INFINITY;
        for (const seq of seqs) first = Math.min(first, records.get(seq)!.timestampMs);
        return { id, first, last: seqs[seqs.length - 1]! };
      });
      keyed.sort((a, b) => b.first - a.first || b.last - a.last);
      return keyed.slice(0, limit).map((k) => k.id);
    },

    recordsOfVehicle: (vehicleId, stream) =>
      (byVehicle.get(vehicleId)?.values() ?? [])
        .map((seq) => records.get(seq)!)
        .filter((r) => r.stream === stream),

    evictExpired(nowMs) {
      const cutoff = nowMs - options.maxAgeMs;
      let evicted = 0;
      for (let seq = order.peek(); seq !== undefined; seq = order.peek()) {
        if (records.get(seq)!.timestampMs >= cutoff) break;
        evictOne('age');
        evicted += 1;
      }
      return evicted;
    },

    size: () => order.length,
    bytes: () => heldBytes,
    oldestTimestampMs() {
      const seq = order.peek();
      return seq === undefined ? null : records.get(seq)!.timestampMs;
    },
  };
}
