import type Redis from 'ioredis';
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
// Returns 1 written, 0 refused (nothing written).
const RESTORE_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
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

type ScriptCall = (...args: (string | number)[]) => Promise<unknown>;

/**
 * Per-vehicle session state in Redis: a hash `<ns>:vehicle:<id>` {rev, state} and a sorted set
 * `<ns>:deadlines` of open sessions by timeout deadline. Writes are compare-and-set on `rev` (a Lua script),
 * so two writers never both apply on top of the same state. Redis is a cache of the changelog topic:
 * `<ns>:restored` (the epoch) marks a Redis that holds it, `<ns>:restore-lock` guards the restore.
 */
export function createRedisSessionStore(redis: Redis, options: RedisSessionStoreOptions): SessionStore {
  const stateKey = (vehicleId: string) => `${options.namespace}:vehicle:${vehicleId}`;
  const deadlinesKey = `${options.namespace}:deadlines`;
  const markerKey = `${options.namespace}:restored`;
  const restoreLockKey = `${options.namespace}:restore-lock`;
  const lockKey = (vehicleId: string) => `${options.namespace}:lock:${vehicleId}`;
  const token = `${process.pid}-${Math.random().toString(36).slice(2)}`;
  /** A Lua script as a command; without `numberOfKeys`, the call's first argument is the number of keys. */
  const script = (name: string, numberOfKeys: number | undefined, lua: string): ScriptCall => {
    redis.defineCommand(name, numberOfKeys === undefined ? { lua } : { numberOfKeys, lua });
    const call = (redis as unknown as Record<string, ScriptCall>)[name]!;
    return (...args) => call.apply(redis, args);
  };
  const loadScript = script('ampflowLoadSessions', undefined, LOAD_SCRIPT);
  const saveScript = script('ampflowSaveSessions', undefined, SAVE_SCRIPT);
  const restoreScript = script('ampflowRestoreSessions', undefined, RESTORE_SCRIPT);
  const completeScript = script('ampflowCompleteRestore', 2, COMPLETE_RESTORE_SCRIPT);
  const compareAndDelete = script('ampflowCompareAndDelete', 1, COMPARE_AND_DELETE);
  const compareAndExpire = script('ampflowCompareAndExpire', 1, COMPARE_AND_EXPIRE);

  return {
    async load(vehicleIds) {
      const keys = [markerKey];
      for (const id of vehicleIds) keys.push(stateKey(id));
      const reply = (await loadScript(keys.length, ...keys)) as Array<string | null>;
      const states = new Map<string, StoredState>();
      for (let i = 0; i < vehicleIds.length; i++) {
        const rev = reply[1 + 2 * i];
        const state = reply[2 + 2 * i];
        if (rev && state) states.set(vehicleIds[i]!, { rev: Number(rev), state: decodeState(state) });
      }
      return { epoch: reply[0] ?? null, states };
    },
    async save(epoch, writes) {
      if (writes.length === 0) return { lost: [], reset: false };
      const args: Array<string | number> = [writes.length + 2, markerKey, deadlinesKey];
      for (const w of writes) args.push(stateKey(w.vehicleId));
      args.push(epoch, options.stateTtlSeconds);
      for (const w of writes) {
        args.push(
          w.expectedRev,
          w.stateText ?? encodeState(w.state),
          w.deadline === null ? '' : w.deadline,
          w.vehicleId,
        );
      }
      const results = (await saveScript(...args)) as number | number[];
      if (results === -1 || !Array.isArray(results)) return { lost: [], reset: true };
      const lost: string[] = [];
      for (let i = 0; i < writes.length; i++) if (results[i] === 0) lost.push(writes[i]!.vehicleId);
      return { lost, reset: false };
    },
    async due(now, limit) {
      const flat = await redis.zrangebyscore(deadlinesKey, '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit);
      const out: DueVehicle[] = [];
      for (let i = 0; i < flat.length; i += 2)
        out.push({ vehicleId: flat[i]!, deadline: Number(flat[i + 1]) });
      return out;
    },
    async claim(vehicleId, ttlMs) {
      return (await redis.set(lockKey(vehicleId), token, 'PX', ttlMs, 'NX')) === 'OK';
    },
    async release(vehicleId) {
      await compareAndDelete(lockKey(vehicleId), token);
    },
    async deadline(vehicleId) {
      const score = await redis.zscore(deadlinesKey, vehicleId);
      return score === null ? null : Number(score);
    },
    async forgetDeadline(vehicleId) {
      await redis.zrem(deadlinesKey, vehicleId);
    },
    openSessions: () => redis.zcard(deadlinesKey),
    epoch: () => redis.get(markerKey),
    async lockRestore(lockToken, ttlMs) {
      return (await redis.set(restoreLockKey, lockToken, 'PX', ttlMs, 'NX')) === 'OK';
    },
    async refreshRestoreLock(lockToken, ttlMs) {
      return (await compareAndExpire(restoreLockKey, lockToken, ttlMs)) === 1;
    },
    async releaseRestoreLock(lockToken) {
      await compareAndDelete(restoreLockKey, lockToken);
    },
    async restore(lockToken, writes) {
      const args: Array<string | number> = [writes.length + 3, markerKey, restoreLockKey, deadlinesKey];
      for (const w of writes) args.push(stateKey(w.vehicleId));
      args.push(lockToken);
      for (const w of writes) {
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
      return (await restoreScript(...args)) === 1;
    },
    async completeRestore(lockToken, epoch) {
      return (await completeScript(markerKey, restoreLockKey, lockToken, epoch)) === 1;
    },
  };
}
