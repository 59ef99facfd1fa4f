import type { ChainableCommander } from 'ioredis';
import { slotPipeline, type RedisClient } from '@ampflow/runtime/redis';
import type { AttemptView, DeadLetterView } from '../admin/delivery-control';
import { CUSTOMER_EVENT_TYPES } from '@ampflow/contracts';
import type { AttemptLog, StoredMessage } from '../delivery/attempt-log';
import {
  applyFilter,
  isAfterCursor,
  lastHourMinutes,
  minuteOf,
  stateAfterAttempt,
  summaryOf,
  type DeliveryState,
  type MessageCursor,
  type MessageFilter,
  TEST_EVENT_TYPE,
  type MessageMeta,
  type MessageSummary,
} from './message-log-model';

/** A message as fan-out (or the test route) saves it, with the endpoints it was sent to. */
export type IndexedMessage = StoredMessage & { endpointIds?: readonly string[] };

export interface MessageQuery extends MessageFilter {
  /** Created at or after (epoch ms). */
  sinceMs?: number;
  /** Created before (epoch ms). */
  untilMs?: number;
  limit: number;
  cursor?: MessageCursor;
  /** Index entries examined at most (default 20 × limit, at least 2,000): a page may come back short. */
  scanLimit?: number;
}

export interface MessagePage {
  data: MessageSummary[];
  nextCursor?: MessageCursor;
}

/**
 * The message log: a time-ordered index of messages and, per message and endpoint, where the delivery stands;
 * plus per-minute attempt and failure counters per endpoint (endpoint health). An {@link AttemptLog} wrapped:
 * every write the delivery engine makes to the attempt log also updates the index, in the same Redis
 * pipeline batch (one entry per batch gathers every index write made meanwhile). History only, like the
 * attempt log: lost with Redis, kept for the attempt retention.
 */
export interface MessageIndex extends AttemptLog {
  saveMessages(messages: IndexedMessage[]): void;
  /** A delivery re-sent by an operator: pending again (before the re-send is written). */
  markRequeued(messageId: string, endpointId: string): void;
  /** A re-send that was not written after all: dead again. */
  markRequeueFailed(messageId: string, endpointId: string): void;
  list(query: MessageQuery): Promise<MessagePage>;
  /** One message's summary (all its endpoints), or null when the log does not know it. */
  summary(messageId: string): Promise<{ summary: MessageSummary; vehicleIds: string[] } | null>;
  /** Attempts and failures per endpoint over the last hour (60 one-minute counters). */
  lastHour(
    endpointIds: readonly string[],
    nowMs: number,
  ): Promise<Map<string, { attempts: number; failures: number }>>;
}

export interface MessageIndexOptions {
  namespace?: string;
  /** As the attempt log's (default 7 days). */
  retentionMs?: number;
  /** Messages in the time index at most (default 1,000,000), and per endpoint (default 200,000). */
  indexCap?: number;
  endpointIndexCap?: number;
  now?: () => number;
}

const DAY_MS = 24 * 60 * 60 * 1000;
/** How often at most each index is pruned to its retention and cap (ms). */
const PRUNE_EVERY_MS = 60_000;
/** Index entries read per range call while listing. */
const CHUNK = 200;
/** Counter keys live this long (ms): the last hour, with room for clocks. */
const COUNTER_TTL_MS = 2 * 60 * 60 * 1000;

interface Pending {
  /** `ZADD NX` into the time index: encoded message id → createdAt ms. */
  index: Map<string, number>;
  endpointIndex: Map<string, Map<string, number>>;
  /** `meta` per message id, written with the message's states in one `HSET` (the same for every copy). */
  meta: Map<string, string>;
  /** `HSETNX meta` per message id, for events the notifier did not save (operational ones), from an attempt. */
  metaFromAttempt: Map<string, string>;
  /** `HSETNX s:<endpoint>` (pending, from fan-out: an attempt's state, if any, is newer) per message id. */
  initial: Map<string, Map<string, string>>;
  /** `HSET s:<endpoint>` per message id. */
  states: Map<string, Map<string, string>>;
  /** `HINCRBY n:<endpoint>` per message id. */
  attemptCounts: Map<string, Map<string, number>>;
  /** Per `<endpoint>\n<minute>`: attempts and failures. */
  counters: Map<string, { a: number; f: number }>;
}

/**
 * Types the notifier saves (with their endpoints) before any attempt: customer events and test messages. Others
 * (operational events) are indexed from their attempts.
 */
const SAVED_TYPES: ReadonlySet<string> = new Set<string>([...CUSTOMER_EVENT_TYPES, TEST_EVENT_TYPE]);
const PENDING = JSON.stringify({ status: 'pending', lastStatusCode: null, nextAttemptAt: null });

const emptyPending = (): Pending => ({
  index: new Map(),
  endpointIndex: new Map(),
  meta: new Map(),
  metaFromAttempt: new Map(),
  initial: new Map(),
  states: new Map(),
  attemptCounts: new Map(),
  counters: new Map(),
});

const inner = <V>(map: Map<string, Map<string, V>>, key: string): Map<string, V> => {
  let m = map.get(key);
  if (!m) {
    m = new Map();
    map.set(key, m);
  }
  return m;
};

/**
 * Key layout (`<ns>` the namespace; ids URI-encoded as in the attempt log):
 *
 * - `<ns>:msglog`: sorted set, member message id, score createdAt (ms): every message, newest last
 * - `<ns>:msglog:endpoint:<endpointId>`: the same for the messages sent to one endpoint
 * - `<ns>:msglog:m:<messageId>`: hash, `meta` (type, vehicle ids), `s:<endpointId>` (DeliveryState
 *   JSON), `n:<endpointId>` (attempts made)
 * - `<ns>:attempt-counts:<endpointId>:<minute>`: hash `a` (attempts) and `f` (failures) of one minute
 *
 * The indexes are pruned of entries older than the retention and trimmed to their cap at most once a minute
 * per index and process; a hash lives for the retention after its last write, counters two hours. An index
 * entry whose hash is gone is skipped when listing.
 */
export function createMessageIndex(
  redis: RedisClient,
  log: AttemptLog,
  options: MessageIndexOptions = {},
): MessageIndex {
  const ns = options.namespace ?? 'ampflow:notifier';
  const retentionMs = options.retentionMs ?? 7 * DAY_MS;
  const indexCap = options.indexCap ?? 1_000_000;
  const endpointIndexCap = options.endpointIndexCap ?? 200_000;
  const now = options.now ?? Date.now;
  const id = encodeURIComponent;
  const indexKey = `${ns}:msglog`;
  const endpointIndexKey = (endpointId: string) => `${ns}:msglog:endpoint:${id(endpointId)}`;
  const hashKeyOfMember = (member: string) => `${ns}:msglog:m:${member}`;
  const counterKey = (endpointId: string, minute: number) =>
    `${ns}:attempt-counts:${id(endpointId)}:${minute}`;

  let pending: Pending | null = null;
  /** The attempt log's dropped writes when `pending` was queued: if they grew, its entry may have been dropped. */
  let droppedWhenQueued = 0;
  const prunedAt = new Map<string, number>();

  /** The batch entry that writes what was gathered; queued once per batch. */
  function gathered(): Pending {
    // An entry the attempt log dropped (its buffer full while Redis is away) is never written: gathering into it
    // would lose everything after. What it holds is lost with it, as the log's own dropped writes are.
    if (pending && log.droppedWrites === droppedWhenQueued) return pending;
    const current = emptyPending();
    pending = current;
    droppedWhenQueued = log.droppedWrites;
    log.enqueueWrite((p) => {
      if (pending === current) pending = null;
      writeAll(p, current);
    });
    return current;
  }

  function prune(p: ChainableCommander, key: string, cap: number, at: number): void {
    const last = prunedAt.get(key);
    if (last !== undefined && at - last < PRUNE_EVERY_MS) return;
    prunedAt.set(key, at);
    p.zremrangebyscore(key, '-inf', `(${at - retentionMs}`)
      .zremrangebyrank(key, 0, -(cap + 1))
      .pexpire(key, retentionMs);
  }

  function writeAll(p: ChainableCommander, w: Pending): void {
    const at = now();
    const zaddNx = (key: string, entries: Map<string, number>, cap: number) => {
      if (entries.size === 0) return;
      const args: Array<string | number> = [];
      for (const [member, score] of entries) args.push(score, member);
      p.zadd(key, 'NX', ...args);
      prune(p, key, cap, at);
    };
    zaddNx(indexKey, w.index, indexCap);
    for (const [endpointId, entries] of w.endpointIndex)
      zaddNx(endpointIndexKey(endpointId), entries, endpointIndexCap);
    const touched = new Set<string>([
      ...w.meta.keys(),
      ...w.metaFromAttempt.keys(),
      ...w.initial.keys(),
      ...w.states.keys(),
      ...w.attemptCounts.keys(),
    ]);
    // Per message: one HSET of its meta and states, HSETNX only where a newer write may already be there.
    for (const messageId of touched) {
      const key = hashKeyOfMember(id(messageId));
      const fields: string[] = [];
      const meta = w.meta.get(messageId);
      if (meta !== undefined) fields.push('meta', meta);
      const states = w.states.get(messageId);
      if (states) for (const [endpointId, state] of states) fields.push(`s:${endpointId}`, state);
      if (fields.length > 0) p.hset(key, ...fields);
      const fromAttempt = w.metaFromAttempt.get(messageId);
      if (fromAttempt !== undefined && meta === undefined) p.hsetnx(key, 'meta', fromAttempt);
      const initial = w.initial.get(messageId);
      if (initial)
        for (const [endpointId, state] of initial)
          if (!states?.has(endpointId)) p.hsetnx(key, `s:${endpointId}`, state);
      const counts = w.attemptCounts.get(messageId);
      if (counts) for (const [endpointId, n] of counts) p.hincrby(key, `n:${endpointId}`, n);
      p.pexpire(key, retentionMs);
    }
    for (const [key, { a, f }] of w.counters) {
      const split = key.indexOf('\n');
      const counter = counterKey(key.slice(0, split), Number(key.slice(split + 1)));
      p.hincrby(counter, 'a', a);
      if (f > 0) p.hincrby(counter, 'f', f);
      p.pexpire(counter, COUNTER_TTL_MS);
    }
  }

  function setState(messageId: string, endpointId: string, state: DeliveryState): void {
    inner(gathered().states, messageId).set(endpointId, JSON.stringify(state));
  }

  async function readHashes(members: string[]): Promise<Array<Record<string, string>>> {
    if (members.length === 0) return [];
    const p = slotPipeline(redis);
    for (const member of members) p.hgetall(hashKeyOfMember(member));
    const results = (await p.exec()) ?? [];
    return results.map(([error, value]) => {
      if (error) throw error;
      return (value ?? {}) as Record<string, string>;
    });
  }

  const vehicleIdsOf = (hash: Record<string, string>): string[] =>
    hash.meta === undefined ? [] : (JSON.parse(hash.meta) as MessageMeta).vehicleIds;

  return {
    ...log,
    get droppedWrites() {
      return log.droppedWrites;
    },

    record(attempt: AttemptView) {
      log.record(attempt);
      const w = gathered();
      const atMs = Date.parse(attempt.at);
      const attemptMs = Number.isFinite(atMs) ? atMs : now();
      if (!SAVED_TYPES.has(attempt.eventType) && !w.meta.has(attempt.messageId)) {
        // Not saved by fan-out (an operational event): indexed at its first attempt.
        const messageKey = id(attempt.messageId);
        if (!w.index.has(messageKey)) w.index.set(messageKey, attemptMs);
        const perEndpoint = inner(w.endpointIndex, attempt.endpointId);
        if (!perEndpoint.has(messageKey)) perEndpoint.set(messageKey, attemptMs);
        w.metaFromAttempt.set(attempt.messageId, JSON.stringify({ type: attempt.eventType, vehicleIds: [] }));
      }
      inner(w.states, attempt.messageId).set(attempt.endpointId, JSON.stringify(stateAfterAttempt(attempt)));
      const counts = inner(w.attemptCounts, attempt.messageId);
      counts.set(attempt.endpointId, (counts.get(attempt.endpointId) ?? 0) + 1);
      const counterId = `${attempt.endpointId}\n${minuteOf(attemptMs)}`;
      const counter = w.counters.get(counterId);
      if (counter) {
        counter.a += 1;
        if (attempt.status === 'failed') counter.f += 1;
      } else w.counters.set(counterId, { a: 1, f: attempt.status === 'failed' ? 1 : 0 });
    },

    saveMessages(messages: IndexedMessage[]) {
      // The endpoint ids are the index's, not part of the message kept for re-sends.
      log.saveMessages(messages.map(({ endpointIds: _targets, ...message }) => message));
      const w = gathered();
      const at = now();
      for (const message of messages) {
        // Ordered by when the notifier made the message (its source time may be far older: a replay, a backlog).
        const messageKey = id(message.id);
        if (!w.index.has(messageKey)) w.index.set(messageKey, at);
        w.meta.set(
          message.id,
          JSON.stringify({ type: message.type, vehicleIds: message.routing.vehicleIds }),
        );
        const initial = inner(w.initial, message.id);
        for (const endpointId of message.endpointIds ?? []) {
          const perEndpoint = inner(w.endpointIndex, endpointId);
          if (!perEndpoint.has(messageKey)) perEndpoint.set(messageKey, at);
          initial.set(endpointId, PENDING);
        }
      }
    },

    recordDeadLetter(dl: DeadLetterView) {
      log.recordDeadLetter(dl);
      setState(dl.messageId, dl.endpointId, {
        status: 'dead',
        lastStatusCode: dl.lastStatus,
        nextAttemptAt: null,
      });
    },

    markRequeued(messageId, endpointId) {
      setState(messageId, endpointId, { status: 'pending', lastStatusCode: null, nextAttemptAt: null });
    },

    markRequeueFailed(messageId, endpointId) {
      setState(messageId, endpointId, { status: 'dead', lastStatusCode: null, nextAttemptAt: null });
    },

    async list(query) {
      await log.flush();
      const key = query.endpointId !== undefined ? endpointIndexKey(query.endpointId) : indexKey;
      const max = query.cursor
        ? String(query.cursor.score)
        : query.untilMs !== undefined
          ? `(${query.untilMs}`
          : '+inf';
      const min = query.sinceMs !== undefined ? String(query.sinceMs) : '-inf';
      const scanLimit = query.scanLimit ?? Math.max(2_000, query.limit * 20);
      const data: MessageSummary[] = [];
      let examined = 0;
      let offset = 0;
      let last: MessageCursor | undefined;
      for (;;) {
        const raw = await redis.zrange(key, max, min, 'BYSCORE', 'REV', 'LIMIT', offset, CHUNK, 'WITHSCORES');
        const entries: MessageCursor[] = [];
        for (let i = 0; i + 1 < raw.length; i += 2)
          entries.push({ member: raw[i]!, score: Number(raw[i + 1]) });
        offset += entries.length;
        const fresh = entries.filter((e) => isAfterCursor(e.score, e.member, query.cursor));
        const hashes = await readHashes(fresh.map((e) => e.member));
        for (let i = 0; i < fresh.length; i += 1) {
          const entry = fresh[i]!;
          examined += 1;
          last = entry;
          const summary = summaryOf(decodeURIComponent(entry.member), hashes[i]!, entry.score);
          const shown = summary && applyFilter(summary, vehicleIdsOf(hashes[i]!), query);
          if (shown) data.push(shown);
          if (data.length >= query.limit || examined >= scanLimit) {
            const more = i + 1 < fresh.length || entries.length === CHUNK;
            return more ? { data, nextCursor: entry } : { data };
          }
        }
        if (entries.length < CHUNK) return { data };
        if (last === undefined && offset > scanLimit) return { data };
      }
    },

    async summary(messageId) {
      await log.flush();
      const [[hash], score] = await Promise.all([
        readHashes([id(messageId)]),
        redis.zscore(indexKey, id(messageId)),
      ]);
      // Out of the time index (pruned): as unknown to the log as an expired hash.
      const summary = hash && score !== null ? summaryOf(messageId, hash, Number(score)) : null;
      return summary ? { summary, vehicleIds: vehicleIdsOf(hash!) } : null;
    },

    async lastHour(endpointIds, nowMs) {
      await log.flush();
      const result = new Map<string, { attempts: number; failures: number }>();
      if (endpointIds.length === 0) return result;
      const minutes = lastHourMinutes(nowMs);
      const p = slotPipeline(redis);
      for (const endpointId of endpointIds)
        for (const minute of minutes) p.hmget(counterKey(endpointId, minute), 'a', 'f');
      const replies = (await p.exec()) ?? [];
      endpointIds.forEach((endpointId, e) => {
        let attempts = 0;
        let failures = 0;
        for (let m = 0; m < minutes.length; m += 1) {
          const [error, value] = replies[e * minutes.length + m] ?? [null, null];
          if (error) throw error;
          const [a, f] = (value ?? [null, null]) as Array<string | null>;
          attempts += Number(a ?? 0);
          failures += Number(f ?? 0);
        }
        result.set(endpointId, { attempts, failures });
      });
      return result;
    },
  };
}
