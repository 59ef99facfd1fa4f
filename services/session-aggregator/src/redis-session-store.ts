import type Redis from 'ioredis';
import type { RestoreWrite } from './state-changelog';
import type { VehicleSessionState } from './session-reducer';

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

// Compare-and-set of one vehicle's state together with its timeout deadline, in one atomic step, and only
// while Redis still holds the marker (epoch) the state was loaded under: a write on top of a reset Redis
// would store a state computed from a state Redis no longer has, next to other vehicles' missing ones.
// KEYS: state hash, deadlines zset, marker. ARGV: epoch, expected rev, state JSON, TTL seconds,
// deadline ('' = none), vehicle id. Returns 1 saved, 0 revision changed, -1 reset.
const SAVE_SCRIPT = `
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return -1 end
local rev = tonumber(redis.call('HGET', KEYS[1], 'rev') or '0')
if rev ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'rev', rev + 1, 'state', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
if ARGV[5] == '' then
  redis.call('ZREM', KEYS[2], ARGV[6])
else
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[6])
end
return 1
`;

// A restore's write of one vehicle: only while the restore holds the lock and no marker is set, so a restore
// that lost its lock (Redis reset again) or came second never overwrites states that are in use.
// KEYS: state hash, deadlines zset, marker, restore lock. ARGV: lock token, rev, state JSON ('' = delete),
// TTL seconds, deadline ('' = none), vehicle id. Returns 1 written, 0 refused.
const RESTORE_SCRIPT = `
if redis.call('EXISTS', KEYS[3]) == 1 or redis.call('GET', KEYS[4]) ~= ARGV[1] then return 0 end
if ARGV[3] == '' then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[6])
  return 1
end
redis.call('HSET', KEYS[1], 'rev', ARGV[2], 'state', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
if ARGV[5] == '' then
  redis.call('ZREM', KEYS[2], ARGV[6])
else
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[6])
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

type ScriptCall = (...args: (string | number)[]) => Promise<number>;

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
  const script = (name: string, numberOfKeys: number, lua: string): ScriptCall => {
    redis.defineCommand(name, { numberOfKeys, lua });
    const call = (redis as unknown as Record<string, ScriptCall>)[name]!;
    return (...args) => call.apply(redis, args);
  };
  const saveScript = script('ampflowSaveSession', 3, SAVE_SCRIPT);
  const restoreScript = script('ampflowRestoreSession', 4, RESTORE_SCRIPT);
  const completeScript = script('ampflowCompleteRestore', 2, COMPLETE_RESTORE_SCRIPT);
  const compareAndDelete = script('ampflowCompareAndDelete', 1, COMPARE_AND_DELETE);
  const compareAndExpire = script('ampflowCompareAndExpire', 1, COMPARE_AND_EXPIRE);

  return {
    async load(vehicleIds) {
      // MULTI: the marker and the states are read at one instant, so a reset between them cannot pass
      // for a set of vehicles that merely have no state yet.
      const tx = redis.multi();
      for (const id of vehicleIds) tx.hmget(stateKey(id), 'rev', 'state');
      tx.get(markerKey);
      const results = await tx.exec();
      if (!results) throw new Error('the Redis transaction was aborted');
      for (const [err] of results) if (err) throw err;
      const states = new Map<string, StoredState>();
      vehicleIds.forEach((id, i) => {
        const [rev, state] = results[i]![1] as [string | null, string | null];
        if (rev && state)
          states.set(id, { rev: Number(rev), state: JSON.parse(state) as VehicleSessionState });
      });
      return { epoch: (results[vehicleIds.length]![1] as string | null) ?? null, states };
    },
    async save(epoch, writes) {
      const results = await Promise.all(
        writes.map((w) =>
          saveScript(
            stateKey(w.vehicleId),
            deadlinesKey,
            markerKey,
            epoch,
            w.expectedRev,
            JSON.stringify(w.state),
            options.stateTtlSeconds,
            w.deadline === null ? '' : String(w.deadline),
            w.vehicleId,
          ),
        ),
      );
      return {
        lost: writes.filter((_, i) => results[i] === 0).map((w) => w.vehicleId),
        reset: results.some((r) => r === -1),
      };
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
      const results = await Promise.all(
        writes.map((w) =>
          w.state === null
            ? restoreScript(
                stateKey(w.vehicleId),
                deadlinesKey,
                markerKey,
                restoreLockKey,
                lockToken,
                0,
                '',
                0,
                '',
                w.vehicleId,
              )
            : restoreScript(
                stateKey(w.vehicleId),
                deadlinesKey,
                markerKey,
                restoreLockKey,
                lockToken,
                w.rev,
                JSON.stringify(w.state),
                w.ttlSeconds,
                w.deadline === null ? '' : String(w.deadline),
                w.vehicleId,
              ),
        ),
      );
      return results.every((r) => r === 1);
    },
    async completeRestore(lockToken, epoch) {
      return (await completeScript(markerKey, restoreLockKey, lockToken, epoch)) === 1;
    },
  };
}
