import type Redis from 'ioredis';
import type { VehicleSessionState } from './session-reducer';

/** A vehicle's state as stored, with the revision it was read at (for compare-and-set). */
export interface StoredState {
  rev: number;
  state: VehicleSessionState;
}

export interface StateWrite {
  vehicleId: string;
  /** The revision the state was read at; 0 when there was none. */
  expectedRev: number;
  state: VehicleSessionState;
  /** Wall-clock time (epoch ms) at which an open session times out; null when none is open. */
  deadline: number | null;
}

export interface DueVehicle {
  vehicleId: string;
  deadline: number;
}

// Compare-and-set of one vehicle's state together with its timeout deadline, in one atomic step.
// KEYS: state hash, deadlines zset. ARGV: expected rev, state JSON, TTL seconds, deadline ('' = none), vehicle id.
const SAVE_SCRIPT = `
local rev = tonumber(redis.call('HGET', KEYS[1], 'rev') or '0')
if rev ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'rev', rev + 1, 'state', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
if ARGV[4] == '' then
  redis.call('ZREM', KEYS[2], ARGV[5])
else
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
end
return 1
`;

export interface SessionStore {
  load(vehicleIds: string[]): Promise<Map<string, StoredState>>;
  /** Writes each state if its revision is unchanged; returns the vehicle ids whose write lost a race. */
  save(writes: StateWrite[]): Promise<string[]>;
  /** Vehicles whose open session passed its deadline by `now`. */
  due(now: number, limit: number): Promise<DueVehicle[]>;
  /** A short exclusive claim on a vehicle (for the timeout sweeper); false when another instance holds it. */
  claim(vehicleId: string, ttlMs: number): Promise<boolean>;
  release(vehicleId: string): Promise<void>;
  openSessions(): Promise<number>;
}

export interface RedisSessionStoreOptions {
  /** Key prefix; tests give each run its own. */
  namespace: string;
  /** Idle vehicles' state expires after this (refreshed on every write); must exceed the inactivity timeout. */
  stateTtlSeconds: number;
}

/**
 * Per-vehicle session state in Redis: a hash `<ns>:vehicle:<id>` {rev, state} and a sorted set
 * `<ns>:deadlines` of open sessions by timeout deadline. Writes are compare-and-set on `rev` (a Lua script),
 * so two writers never both apply on top of the same state.
 */
export function createRedisSessionStore(redis: Redis, options: RedisSessionStoreOptions): SessionStore {
  const stateKey = (vehicleId: string) => `${options.namespace}:vehicle:${vehicleId}`;
  const deadlinesKey = `${options.namespace}:deadlines`;
  const lockKey = (vehicleId: string) => `${options.namespace}:lock:${vehicleId}`;
  const token = `${process.pid}-${Math.random().toString(36).slice(2)}`;
  redis.defineCommand('ampflowSaveSession', { numberOfKeys: 2, lua: SAVE_SCRIPT });
  const save = (redis as unknown as { ampflowSaveSession: (...args: (string | number)[]) => Promise<number> })
    .ampflowSaveSession;

  return {
    async load(vehicleIds) {
      const rows = await Promise.all(vehicleIds.map((id) => redis.hmget(stateKey(id), 'rev', 'state')));
      const out = new Map<string, StoredState>();
      rows.forEach(([rev, state], i) => {
        if (rev && state)
          out.set(vehicleIds[i]!, { rev: Number(rev), state: JSON.parse(state) as VehicleSessionState });
      });
      return out;
    },
    async save(writes) {
      const results = await Promise.all(
        writes.map((w) =>
          save.call(
            redis,
            stateKey(w.vehicleId),
            deadlinesKey,
            w.expectedRev,
            JSON.stringify(w.state),
            options.stateTtlSeconds,
            w.deadline === null ? '' : String(w.deadline),
            w.vehicleId,
          ),
        ),
      );
      return writes.filter((_, i) => results[i] !== 1).map((w) => w.vehicleId);
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
      await redis.eval(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end",
        1,
        lockKey(vehicleId),
        token,
      );
    },
    openSessions: () => redis.zcard(deadlinesKey),
  };
}
