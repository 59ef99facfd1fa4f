import { defineScript, isCluster, slotOf, spreadHashTags, type RedisClient } from '@ampflow/runtime/redis';
import type { RestoreWrite } from './state-changelog';
import type { VehicleSessionState } from './session-reducer';
import { decodeState, encodeState } from './state-codec';

/** A vehicle's state as stored, with the revision it was read at (for compare-and-set). */
export interface StoredState {
  rev: number;
  state: VehicleSessionState;
}

/**
 * States read in one atomic step together with the restore marker. `epoch` is null when the marker is
 * missing: Redis was emptied (restarted without persistence, flushed) and must be restored before use.
 */
export interface LoadedStates {
  epoch: string | null;
  states: Map<string, StoredState>;
}

export interface StateWrite {
  vehicleId: string;
  /** The revision the state was read at; 0 when there was none. */
  expectedRev: number;
  state: VehicleSessionState;
  /** `state` encoded (`encodeState`), when the writer has it already; encoded on save otherwise. */
  stateText?: string;
  /** Wall-clock time (epoch ms) at which an open session times out; null when none is open. */
  deadline: number | null;
}

export interface SaveResult {
  /** Vehicles whose write lost a race with another writer. */
  lost: string[];
  /** True when the marker was gone or different: Redis was reset after the load, nothing may be written. */
  reset: boolean;
}

export interface DueVehicle {
  vehicleId: string;
  deadline: number;
}

// The states of a chunk's vehicles and the marker, at one instant (a reset between them cannot pass for vehicles
// that merely have no state yet). One command for the whole chunk: a MULTI of one HMGET per vehicle costs a
// command, a QUEUED reply and a client-side promise per vehicle.
// KEYS: marker, then each vehicle's state hash. Returns {marker or nil, rev, state, rev, state, ...}.
const LOAD_SCRIPT = `
local out = { redis.call('GET', KEYS[1]) }
for i = 2, #KEYS do
  local v = redis.call('HMGET', KEYS[i], 'rev', 'state')
  out[#out + 1] = v[1]
  out[#out + 1] = v[2]
end
return out
`;

// Compare-and-set of each vehicle's state together with its timeout deadline, all in one atomic step, and
// only while Redis still holds the marker (epoch) the states were loaded under: a write on top of a reset
// Redis would store a state computed from a state Redis no longer has, next to other vehicles' missing ones.
// One script for a chunk's vehicles (one round trip, one command). The keys are all passed in KEYS, none
// built in the script, so that on a Redis Cluster a chunk could be saved per hash slot.
// KEYS: marker, deadlines zset, then each vehicle's state hash. ARGV: epoch, TTL seconds, then per vehicle:
// expected rev, state JSON, deadline ('' = none), vehicle id. Returns -1 (reset: nothing written) or, per
// vehicle, 1 saved / 0 revision changed.
const SAVE_SCRIPT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local out = {}
for i = 3, #KEYS do
  local a = 3 + (i - 3) * 4
  local rev = tonumber(redis.call('HGET', KEYS[i], 'rev') or '0')
  if rev ~= tonumber(ARGV[a]) then
    out[#out + 1] = 0
  else
    redis.call('HSET', KEYS[i], 'rev', rev + 1, 'state', ARGV[a + 1])
    redis.call('EXPIRE', KEYS[i], ARGV[2])
    if ARGV[a + 2] == '' then
      redis.call('ZREM', KEYS[2], ARGV[a + 3])
    else
      redis.call('ZADD', KEYS[2], ARGV[a + 2], ARGV[a + 3])
    end
    out[#out + 1] = 1
  end
end
return out
`;

// A restore's writes of a batch of vehicles: only while the restore holds the lock and no marker is set, so a
// restore that lost its lock (Redis reset again) or came second never overwrites states that are in use.
// KEYS: marker, restore lock, deadlines zset, then each vehicle's state hash. ARGV: lock token, then per
// vehicle: rev, state JSON ('' = delete), TTL seconds, deadline ('' = none), vehicle id.
// Returns 1 written, 0 refused: the lock is not ours, 2 refused: the marker is set (nothing written either way).
const RESTORE_SCRIPT = `
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
if redis.call('EXISTS', KEYS[1]) == 1 then return 2 end
for i = 4, #KEYS do
  local a = 2 + (i - 4) * 5
  if ARGV[a + 1] == '' then
    redis.call('DEL', KEYS[i])
    redis.call('ZREM', KEYS[3], ARGV[a + 4])
  else
    redis.call('HSET', KEYS[i], 'rev', ARGV[a], 'state', ARGV[a + 1])
    redis.call('EXPIRE', KEYS[i], ARGV[a + 2])
    if ARGV[a + 3] == '' then
      redis.call('ZREM', KEYS[3], ARGV[a + 4])
    else
      redis.call('ZADD', KEYS[3], ARGV[a + 3], ARGV[a + 4])
    end
  end
end
return 1
`;

// KEYS: marker, restore lock. ARGV: lock token, new epoch.
const COMPLETE_RESTORE_SCRIPT = `
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('DEL', KEYS[2])
return 1
`;

const COMPARE_AND_DELETE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end
`;

const COMPARE_AND_EXPIRE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end
`;

export interface SessionStore {
  /** The states of `vehicleIds` and the marker, in one atomic round trip. */
  load(vehicleIds: string[]): Promise<LoadedStates>;
  /** Writes each state if its revision is unchanged and Redis still holds `epoch`. */
  save(epoch: string, writes: StateWrite[]): Promise<SaveResult>;
  /** Vehicles whose open session passed its deadline by `now`. */
  due(now: number, limit: number): Promise<DueVehicle[]>;
  /** A vehicle's timeout deadline (epoch ms), or null when it has no open session. */
  deadline(vehicleId: string): Promise<number | null>;
  /** Drops a deadline whose state is gone (expired), so it does not come back in every sweep. */
  forgetDeadline(vehicleId: string): Promise<void>;
  /** A short exclusive claim on a vehicle (for the timeout sweeper); false when another instance holds it. */
  claim(vehicleId: string, ttlMs: number): Promise<boolean>;
  release(vehicleId: string): Promise<void>;
  openSessions(): Promise<number>;
  /** The restore marker, or null when Redis must be restored first. */
  epoch(): Promise<string | null>;
  /** Takes the restore lock for `ttlMs` (one restore at a time across instances); false when another holds it. */
  lockRestore(token: string, ttlMs: number): Promise<boolean>;
  /** Extends the restore lock; false when it is no longer ours (it expired, or Redis was reset again). */
  refreshRestoreLock(token: string, ttlMs: number): Promise<boolean>;
  releaseRestoreLock(token: string): Promise<void>;
  /** Writes restored states; false when refused (lock lost, or a marker set meanwhile): stop restoring. */
  restore(token: string, writes: RestoreWrite[]): Promise<boolean>;
  /** Sets the marker to `epoch` and drops the lock, if the lock is still ours; true when done. */
  completeRestore(token: string, epoch: string): Promise<boolean>;
}

export interface RedisSessionStoreOptions {
  /** Key prefix; tests give each run its own. */
  namespace: string;
  /** Idle vehicles' state expires after this (refreshed on every write); must exceed the inactivity timeout. */
  stateTtlSeconds: number;
}

type ScriptCall = (...args: Array<string | number>) => Promise<unknown>;

/**
 * Shards of the key space on a Redis Cluster: each holds its vehicles' states with a marker, a deadlines set
 * and a restore lock of its own, all under one hash tag (one slot), so that each shard's scripts stay atomic.
 * Fixed: every instance must agree on it, and changing it would hide the states stored under the old tags.
 */
export const CLUSTER_SHARDS = 64;
const SLOTS = 16_384;

/** The keys of one shard (`prefix` is the namespace, with the shard's hash tag on a cluster). */
interface ShardKeys {
  marker: string;
  deadlines: string;
  restoreLock: string;
  vehicle(vehicleId: string): string;
}

function shardKeys(prefix: string): ShardKeys {
  return {
    marker: `${prefix}:restored`,
    deadlines: `${prefix}:deadlines`,
    restoreLock: `${prefix}:restore-lock`,
    vehicle: (vehicleId) => `${prefix}:vehicle:${vehicleId}`,
  };
}

/**
 * Per-vehicle session state in Redis: a hash `<ns>:vehicle:<id>` {rev, state} and a sorted set
 * `<ns>:deadlines` of open sessions by timeout deadline. Writes are compare-and-set on `rev` (a Lua script),
 * so two writers never both apply on top of the same state. Redis is a cache of the changelog topic:
 * `<ns>:restored` (the epoch) marks a Redis that holds it, `<ns>:restore-lock` guards the restore.
 *
 * On a Redis Cluster the same keys exist once per shard ({@link CLUSTER_SHARDS}), with the shard's hash tag
 * after the namespace (`<ns>:{s7}:vehicle:<id>`, `<ns>:{s7}:restored`, ...); a vehicle's shard follows from the
 * hash slot of its id, and the tags spread the shards evenly over the slots. A chunk's load and save are one
 * script per shard it touches (sent together: one round trip per node); the epoch is the marker all of them
 * hold, and a master that restarts empty loses the markers of its shards only: the restore takes the lock of
 * every shard and writes the changelog's states into the shards without a marker (the others kept theirs, which
 * are at least as new), then sets the new epoch in every shard. On a single server there is one shard with
 * the keys as they always were: one script per chunk, as before.
 */
export function createRedisSessionStore(redis: RedisClient, options: RedisSessionStoreOptions): SessionStore {
  const cluster = isCluster(redis);
  const shards: ShardKeys[] = cluster
    ? spreadHashTags(CLUSTER_SHARDS).map((tag) => shardKeys(`${options.namespace}:{${tag}}`))
    : [shardKeys(options.namespace)];
  const shardOf = (vehicleId: string) =>
    cluster ? Math.floor((slotOf(vehicleId) * CLUSTER_SHARDS) / SLOTS) : 0;
  /** Items by shard; on a single server always the one shard, even with no items (its marker is still checked). */
  const byShard = <T>(items: readonly T[], idOf: (item: T) => string): Map<number, T[]> => {
    if (!cluster) return new Map([[0, [...items]]]);
    const groups = new Map<number, T[]>();
    for (const item of items) {
      const shard = shardOf(idOf(item));
      const group = groups.get(shard);
      if (group) group.push(item);
      else groups.set(shard, [item]);
    }
    return groups;
  };
  const lockKey = (vehicleId: string) => `${options.namespace}:lock:${vehicleId}`;
  const token = `${process.pid}-${Math.random().toString(36).slice(2)}`;
  /** A Lua script with a fixed number of keys, as a command. */
  const script = (name: string, numberOfKeys: number, lua: string): ScriptCall => {
    redis.defineCommand(name, { numberOfKeys, lua });
    const call = (redis as unknown as Record<string, ScriptCall>)[name]!;
    return (...args) => call.apply(redis, args);
  };
  // The chunk scripts take any number of keys: the call's first argument is their number.
  const loadScript = defineScript(redis, LOAD_SCRIPT);
  const saveScript = defineScript(redis, SAVE_SCRIPT);
  const restoreScript = defineScript(redis, RESTORE_SCRIPT);
  const completeScript = script('ampflowCompleteRestore', 2, COMPLETE_RESTORE_SCRIPT);
  const compareAndDelete = script('ampflowCompareAndDelete', 1, COMPARE_AND_DELETE);
  const compareAndExpire = script('ampflowCompareAndExpire', 1, COMPARE_AND_EXPIRE);
  /** The one marker every shard holds, or null when one lacks it (or they differ: a restore was cut short). */
  const agreed = (markers: ReadonlyArray<string | null>): string | null =>
    markers.every((m) => m !== null && m === markers[0]) ? (markers[0] ?? null) : null;
  const allShards = <T>(call: (shard: ShardKeys) => Promise<T>) => Promise.all(shards.map(call));
  const epoch = async () => agreed(await allShards((keys) => redis.get(keys.marker)));

  return {
    async load(vehicleIds) {
      const states = new Map<string, StoredState>();
      if (cluster && vehicleIds.length === 0) return { epoch: await epoch(), states };
      const markers = await Promise.all(
        [...byShard(vehicleIds, (id) => id)].map(async ([shard, ids]) => {
          const keys = [shards[shard]!.marker];
          for (const id of ids) keys.push(shards[shard]!.vehicle(id));
          const reply = (await loadScript(keys.length, ...keys)) as Array<string | null>;
          for (let i = 0; i < ids.length; i++) {
            const rev = reply[1 + 2 * i];
            const state = reply[2 + 2 * i];
            if (rev && state) states.set(ids[i]!, { rev: Number(rev), state: decodeState(state) });
          }
          return reply[0] ?? null;
        }),
      );
      return { epoch: agreed(markers), states };
    },
    async save(epoch, writes) {
      if (writes.length === 0) return { lost: [], reset: false };
      const lost: string[] = [];
      let reset = false;
      await Promise.all(
        [...byShard(writes, (w) => w.vehicleId)].map(async ([shard, group]) => {
          const keys = shards[shard]!;
          const args: Array<string | number> = [keys.marker, keys.deadlines];
          for (const w of group) args.push(keys.vehicle(w.vehicleId));
          args.push(epoch, options.stateTtlSeconds);
          for (const w of group) {
            args.push(
              w.expectedRev,
              w.stateText ?? encodeState(w.state),
              w.deadline === null ? '' : w.deadline,
              w.vehicleId,
            );
          }
          const results = (await saveScript(group.length + 2, ...args)) as number | number[];
          if (results === -1 || !Array.isArray(results)) {
            reset = true;
            return;
          }
          for (let i = 0; i < group.length; i++) if (results[i] === 0) lost.push(group[i]!.vehicleId);
        }),
      );
      return reset ? { lost: [], reset } : { lost, reset };
    },
    async due(now, limit) {
      const perShard = await allShards((keys) =>
        redis.zrangebyscore(keys.deadlines, '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit),
      );
      const out: DueVehicle[] = [];
      for (const flat of perShard)
        for (let i = 0; i < flat.length; i += 2)
          out.push({ vehicleId: flat[i]!, deadline: Number(flat[i + 1]) });
      if (perShard.length > 1) out.sort((a, b) => a.deadline - b.deadline);
      return out.slice(0, limit);
    },
    async claim(vehicleId, ttlMs) {
      return (await redis.set(lockKey(vehicleId), token, 'PX', ttlMs, 'NX')) === 'OK';
    },
    async release(vehicleId) {
      await compareAndDelete(lockKey(vehicleId), token);
    },
    async deadline(vehicleId) {
      const score = await redis.zscore(shards[shardOf(vehicleId)]!.deadlines, vehicleId);
      return score === null ? null : Number(score);
    },
    async forgetDeadline(vehicleId) {
      await redis.zrem(shards[shardOf(vehicleId)]!.deadlines, vehicleId);
    },
    async openSessions() {
      const counts = await allShards((keys) => redis.zcard(keys.deadlines));
      return counts.reduce((sum, n) => sum + n, 0);
    },
    epoch,
    async lockRestore(lockToken, ttlMs) {
      const take = async (keys: ShardKeys) =>
        (await redis.set(keys.restoreLock, lockToken, 'PX', ttlMs, 'NX')) === 'OK';
      // The first shard's lock first: of two instances restoring at once, one stops here, and neither can end
      // up with half of the locks each (both would give up and try again together).
      if (!(await take(shards[0]!))) return false;
      const taken = await Promise.all(shards.slice(1).map(take));
      if (taken.every(Boolean)) return true;
      // A lock left by an earlier restore that has not expired yet: give back what this one took.
      await allShards((keys) => compareAndDelete(keys.restoreLock, lockToken));
      return false;
    },
    async refreshRestoreLock(lockToken, ttlMs) {
      const held = await allShards(
        async (keys) => (await compareAndExpire(keys.restoreLock, lockToken, ttlMs)) === 1,
      );
      return held.every(Boolean);
    },
    async releaseRestoreLock(lockToken) {
      await allShards((keys) => compareAndDelete(keys.restoreLock, lockToken));
    },
    async restore(lockToken, writes) {
      const replies = await Promise.all(
        [...byShard(writes, (w) => w.vehicleId)].map(([shard, group]) => {
          const keys = shards[shard]!;
          const args: Array<string | number> = [keys.marker, keys.restoreLock, keys.deadlines];
          for (const w of group) args.push(keys.vehicle(w.vehicleId));
          args.push(lockToken);
          for (const w of group) {
            if (w.state === null) args.push(0, '', 0, '', w.vehicleId);
            else {
              args.push(
                w.rev,
                encodeState(w.state),
                w.ttlSeconds,
                w.deadline === null ? '' : w.deadline,
                w.vehicleId,
              );
            }
          }
          return restoreScript(group.length + 3, ...args);
        }),
      );
      // A shard that kept its marker kept its states (a cluster master that did not restart): left as it is.
      // On a single server a marker means another restore finished: refused.
      return replies.every((reply) => reply === 1 || (cluster && reply === 2));
    },
    async completeRestore(lockToken, epoch) {
      const done = await allShards(
        async (keys) => (await completeScript(keys.marker, keys.restoreLock, lockToken, epoch)) === 1,
      );
      return done.every(Boolean);
    },
  };
}
