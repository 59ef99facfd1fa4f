import type { StoredState } from './redis-session-store';
import type { VehicleSessionState } from './session-reducer';

/**
 * The states this instance saved last, so that the next chunk of the same partition need not load them from
 * Redis again (at low rates a chunk is one reading: its load was one of the two Redis round trips per reading).
 *
 * A cached state is only used when nobody else can have written the vehicle since it was saved:
 * - the chunk continues its partition where this instance's last saved chunk of it ended (same source, next
 *   offset): another instance that held the partition meanwhile and applied readings would have moved the
 *   offset (a reading it applied without committing is applied again here with the same result, and the
 *   save's compare-and-set refuses the stale revision);
 * - the vehicle's entry was saved from that same partition, no longer ago than `maxAgeMs`;
 * - the vehicle has no open session, or its timeout deadline is more than `deadlineMarginMs` away: the
 *   sweeper (of any instance) only writes vehicles whose deadline passed (the margin covers clocks apart);
 * - the whole chunk is saved under the epoch the entries were saved under; a restore in between changes the
 *   epoch, the save is refused and the chunk handled again with a load (the cache is then cleared).
 * Any failed save clears the cache. The save stays a compare-and-set, so a cached state that is stale anyway
 * is never written.
 */
export interface StateCache {
  /**
   * The cached states of `vehicleIds` for a chunk of `source` starting at `firstOffset`, and the epoch they
   * were saved under; `misses` are the vehicles to load. Everything misses when the chunk does not continue the
   * partition where the last saved chunk ended.
   */
  lookup(
    source: string,
    firstOffset: string,
    vehicleIds: Iterable<string>,
    now: number,
  ): { epoch: string | null; hits: Map<string, StoredState>; misses: string[] };
  /**
   * After a chunk of `source` ending before `nextOffset` was saved under `epoch`: its vehicles' states as
   * Redis now holds them (the new ones, and those it read and left unchanged).
   */
  remember(
    source: string,
    nextOffset: string,
    epoch: string,
    saved: SavedState[],
    now: number,
    /** Vehicles the chunk wrote that are not kept (their entries, now stale, are dropped). */
    dropped?: Iterable<string>,
  ): void;
  /** Forgets everything (a failed save, an epoch that changed). */
  clear(): void;
  size(): number;
}

export interface SavedState {
  vehicleId: string;
  /** The revision Redis holds after the save. */
  rev: number;
  state: VehicleSessionState;
  deadline: number | null;
}

export interface StateCacheOptions {
  /** Most vehicles kept (least recently saved dropped first). 0 disables the cache. */
  maxEntries: number;
  /** An entry saved longer ago than this is not used. */
  maxAgeMs: number;
  /** An open session whose deadline is nearer than this is loaded, not taken from the cache. */
  deadlineMarginMs: number;
}

interface Entry extends SavedState {
  source: string;
  savedAt: number;
}

/** The offset after `offset` (Kafka offsets are int64 strings). */
export function nextOffsetOf(offset: string): string {
  return (BigInt(offset) + 1n).toString();
}

export function createStateCache(options: StateCacheOptions): StateCache {
  const entries = new Map<string, Entry>();
  /** Per source (topic/partition): the offset its next chunk starts at if it follows the last saved one. */
  const nextOffsets = new Map<string, string>();
  let epoch: string | null = null;

  const usable = (entry: Entry | undefined, source: string, now: number): entry is Entry =>
    entry !== undefined &&
    entry.source === source &&
    now - entry.savedAt <= options.maxAgeMs &&
    (entry.deadline === null || entry.deadline - now > options.deadlineMarginMs);

  return {
    lookup(source, firstOffset, vehicleIds, now) {
      const hits = new Map<string, StoredState>();
      const misses: string[] = [];
      const continues = epoch !== null && nextOffsets.get(source) === firstOffset;
      for (const vehicleId of vehicleIds) {
        const entry = continues ? entries.get(vehicleId) : undefined;
        if (usable(entry, source, now)) hits.set(vehicleId, { rev: entry.rev, state: entry.state });
        else misses.push(vehicleId);
      }
      return { epoch: hits.size > 0 ? epoch : null, hits, misses };
    },
    remember(source, nextOffset, savedEpoch, saved, now, dropped = []) {
      if (options.maxEntries <= 0) return;
      if (epoch !== savedEpoch) {
        entries.clear();
        nextOffsets.clear();
        epoch = savedEpoch;
      }
      for (const vehicleId of dropped) entries.delete(vehicleId);
      nextOffsets.set(source, nextOffset);
      for (const s of saved) {
        // Delete first: the map's order is the order of the last saves, oldest first.
        entries.delete(s.vehicleId);
        entries.set(s.vehicleId, { ...s, source, savedAt: now });
      }
      for (const vehicleId of entries.keys()) {
        if (entries.size <= options.maxEntries) break;
        entries.delete(vehicleId);
      }
    },
    clear() {
      entries.clear();
      nextOffsets.clear();
      epoch = null;
    },
    size: () => entries.size,
  };
}
