import { ValidationError } from '@ampflow/runtime';
import type { VehicleSessionState } from './session-reducer';
import { encodeState, stateOf } from './state-codec';

/**
 * The changelog topic of a consumer group when none is configured: `<groupId>-state-changelog`, as Kafka Streams
 * names a store's changelog after its application id. An internal topic, not part of the contract. The states in
 * it are what the group's committed offsets have applied, so a new group (which reads the telemetry from the
 * beginning) must not find an old group's states: they would turn every replayed reading into a duplicate.
 */
export function changelogTopicOf(consumerGroupId: string): string {
  return `${consumerGroupId}-state-changelog`;
}

/**
 * One vehicle's state as the changelog keeps it (record key = `vehicleId`): what Redis holds for it, so that
 * an empty Redis can be refilled from the topic. Closed states are kept too: their recent event ids, last
 * applied time and battery capacity are what makes a redelivered or late reading change nothing.
 */
export interface ChangelogEntry {
  vehicleId: string;
  /** The revision the state has in Redis once this write is saved. */
  rev: number;
  state: VehicleSessionState;
  /** Wall-clock time (epoch ms) at which the open session times out; null when none is open. */
  deadline: number | null;
  /** Wall-clock time (epoch ms) of the write, to give a restored state the rest of its Redis TTL. */
  writtenAt: number;
}

/**
 * Version 2: the state's recent event ids are fingerprints (`recentEvents`). Version 1 (the ids themselves,
 * `recentEventIds`) is still read, its ids turned into fingerprints, so a changelog written before restores.
 */
const FORMAT_VERSION = 2;
const READABLE_VERSIONS: readonly unknown[] = [1, 2];

/**
 * The changelog value of a state already encoded (`encodeState`): built around the text, so that a state is
 * serialized once for its size check, its changelog record and Redis.
 */
export function changelogValueText(
  entry: Pick<ChangelogEntry, 'rev' | 'deadline' | 'writtenAt'>,
  stateText: string,
): string {
  return `{"v":${FORMAT_VERSION},"rev":${entry.rev},"deadline":${entry.deadline === null ? 'null' : entry.deadline},"writtenAt":${entry.writtenAt},"state":${stateText}}`;
}

export function encodeChangelogValue(entry: ChangelogEntry): Buffer {
  return Buffer.from(changelogValueText(entry, encodeState(entry.state)));
}

const isFiniteNumber = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

/**
 * Reads one changelog record (version 1 or 2): the entry, or null for a tombstone (nothing kept for the
 * vehicle). A record that is not one of ours throws a {@link ValidationError}.
 */
export function decodeChangelogRecord(
  key: Buffer | string | null,
  value: Buffer | null,
): ChangelogEntry | null {
  const vehicleId = key?.toString();
  if (!vehicleId) throw new ValidationError('bad_changelog_record', 'a changelog record without a key');
  if (value === null) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value.toString('utf8'));
  } catch (err) {
    throw new ValidationError('bad_changelog_record', `changelog record of ${vehicleId} is not JSON`, {
      cause: err,
    });
  }
  const p = parsed as Record<string, unknown> | null;
  const state = stateOf(p?.state);
  if (
    !p ||
    !READABLE_VERSIONS.includes(p.v) ||
    !isFiniteNumber(p.rev) ||
    !isFiniteNumber(p.writtenAt) ||
    !(p.deadline === null || isFiniteNumber(p.deadline)) ||
    state === null ||
    state.vehicleId !== vehicleId
  ) {
    throw new ValidationError(
      'bad_changelog_record',
      `changelog record of ${vehicleId} has an unknown shape`,
    );
  }
  return {
    vehicleId,
    rev: p.rev,
    state,
    deadline: p.deadline as number | null,
    writtenAt: p.writtenAt,
  };
}

/** What a restore writes to Redis for one vehicle: its state with the rest of its TTL, or a delete. */
export type RestoreWrite =
  | {
      vehicleId: string;
      rev: number;
      state: VehicleSessionState;
      deadline: number | null;
      ttlSeconds: number;
    }
  | { vehicleId: string; state: null };

/**
 * The Redis write that brings a vehicle back to its latest changelog entry at wall-clock `now`.
 * A tombstone, or a state idle for longer than `stateTtlSeconds` (Redis would have expired it), is a delete.
 */
export function restoreWriteOf(
  vehicleId: string,
  entry: ChangelogEntry | null,
  now: number,
  stateTtlSeconds: number,
): RestoreWrite {
  if (!entry) return { vehicleId, state: null };
  const ttlSeconds = stateTtlSeconds - Math.floor(Math.max(0, now - entry.writtenAt) / 1000);
  if (ttlSeconds <= 0) return { vehicleId, state: null };
  return { vehicleId, rev: entry.rev, state: entry.state, deadline: entry.deadline, ttlSeconds };
}

/**
 * The latest entry per vehicle of records in log order (a later record of a key replaces an earlier one,
 * as compaction would), so a restore writes each vehicle once per batch.
 */
export function latestPerVehicle<T extends { vehicleId: string }>(entries: T[]): T[] {
  const latest = new Map<string, T>();
  for (const entry of entries) {
    // Delete first so the map's order is that of each vehicle's last record.
    latest.delete(entry.vehicleId);
    latest.set(entry.vehicleId, entry);
  }
  return [...latest.values()];
}
