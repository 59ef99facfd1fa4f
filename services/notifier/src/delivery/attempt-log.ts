import { createHash } from 'node:crypto';
import type { Logger } from '@ampflow/observability';
import type { ChainableCommander } from 'ioredis';
import { mget, partitionForCommands, slotPipeline, type RedisClient } from '@ampflow/runtime/redis';
import type { AttemptView, DeadLetterView } from '../admin/delivery-control';
import type { EventRouting } from '../events/customer-events';

/** A customer message as sent, kept for the retention so `POST /v1/messages/:id/retry` can send it again. */
export interface StoredMessage {
  id: string;
  type: string;
  body: string;
  routing: EventRouting;
  sourceTimestampMs: number;
}

/**
 * What happened to each delivery, for the admin API. History only: the durable truth (pending retries, dead
 * letters) is in Kafka, so losing Redis, or a write dropped here, loses history and nothing else. Writes are
 * buffered and sent in batches; reads first flush what is buffered, so an API caller sees its own writes.
 */
export interface AttemptLog {
  /** Adds an attempt to its endpoint's list and its message's list (both newest first, capped). */
  record(attempt: AttemptView): void;
  /** The newest `limit` attempts of an endpoint, newest first. */
  forEndpoint(endpointId: string, limit: number): Promise<AttemptView[]>;
  /** The attempts of a message over all endpoints, newest first. */
  forMessage(messageId: string): Promise<AttemptView[]>;
  /** Keeps message bodies for the retention, so they can be re-sent. */
  saveMessages(messages: StoredMessage[]): void;
  getMessage(id: string): Promise<StoredMessage | null>;
  /** Indexes a dead letter (one per message and endpoint; a repeat replaces it). */
  recordDeadLetter(dl: DeadLetterView): void;
  /** Removes a dead letter from the index (re-sent successfully, or requeued). */
  clearDeadLetter(messageId: string, endpointId: string): void;
  /** Dead letters, newest first, over all endpoints or one. */
  deadLetters(filter: { endpointId?: string; limit: number }): Promise<DeadLetterView[]>;
  /**
   * Adds commands of another history index (message log, attempt counters) to the same batches: `write` is
   * called when the batch it falls in is built, with that batch's pipeline (so it may add what was gathered
   * since it was queued).
   */
  enqueueWrite(write: (pipeline: ChainableCommander) => void): void;
  /**
   * Adds the next buffered batch to a pipeline another writer is about to send (the done marks'), so that
   * history goes in that round trip instead of one of its own. Returns what to call with that pipeline's
   * replies (all of them) or its error, or `undefined` when nothing is buffered. The caller sends the pipeline
   * at once (batches reach Redis in the order they were taken).
   */
  carry(pipeline: ChainableCommander): CarriedBatch | undefined;
  /** Sends everything buffered so far; resolves when it is written (or dropped). Never rejects. */
  flush(): Promise<void>;
  /** Buffered writes lost so far (a failed batch, or a full buffer while Redis does not answer). */
  readonly droppedWrites: number;
}

/** Settles a batch carried in another writer's pipeline: with the pipeline's replies, or the error it failed with. */
export type CarriedBatch = (replies: ReadonlyArray<[Error | null, unknown]> | Error) => void;

export interface AttemptLogOptions {
  /** Key prefix (default `ampflow:notifier`). */
  namespace?: string;
  /** How long every key lives after its last write (ms, default 7 days). */
  retentionMs?: number;
  /**
   * Longest a write waits in the buffer (ms, default 50; reads flush first). At a low rate most batches go
   * sooner, in a done mark's round trip (`carry`): the timer sends what no delivery's mark took along.
   */
  flushIntervalMs?: number;
  /**
   * Shortest time between two batches sent in other writers' pipelines (`carry`, default 50 ms): at a low rate
   * every done mark carries the history made since the last one; at a high rate history still goes in batches
   * this far apart (a smaller batch costs more commands per attempt: lists, indexes and counters are written
   * once per key and batch).
   */
  minCarryIntervalMs?: number;
  /** Writes per pipeline; a buffer this full is sent at once (default 500). */
  maxBatch?: number;
  /** Attempts kept per endpoint (default 1,000). */
  endpointAttemptsCap?: number;
  /** Attempts kept per message (default 100). */
  messageAttemptsCap?: number;
  /** Dead letters indexed, in all and per endpoint (default 100,000). */
  deadLetterCap?: number;
  logger?: Logger;
}

const DAY_MS = 24 * 60 * 60 * 1000;
/** Pipelines in flight at once; past them writes wait in the buffer, and past its bound they are dropped. */
const MAX_IN_FLIGHT = 4;
/** Buffered writes at most, in batches: about 10,000 entries, two seconds of the hot path. */
const MAX_BUFFERED_BATCHES = 20;

/**
 * Pushes a batch's values onto capped lists. KEYS: the lists; ARGV[1]: the TTL (ms); then per list its cap,
 * its number of values and the values (oldest first). One command per batch instead of three per list.
 */
const PUSH_LISTS_SCRIPT = `local i = 2
for k = 1, #KEYS do
  local cap = tonumber(ARGV[i])
  local n = tonumber(ARGV[i + 1])
  local j = i + 2
  local last = i + 1 + n
  while j <= last do
    local e = math.min(j + 999, last)
    redis.call('LPUSH', KEYS[k], unpack(ARGV, j, e))
    j = e + 1
  end
  redis.call('LTRIM', KEYS[k], 0, cap - 1)
  redis.call('PEXPIRE', KEYS[k], ARGV[1])
  i = i + 2 + n
end
return #KEYS`;
const PUSH_LISTS_SHA = createHash('sha1').update(PUSH_LISTS_SCRIPT).digest('hex');

/** Values to push onto capped lists, gathered per key over one batch: one LPUSH/LTRIM/PEXPIRE per key. */
type ListPushes = Map<string, { cap: number; values: string[] }>;
type Entry = (pipeline: ChainableCommander, lists: ListPushes) => void;

/**
 * Key layout (`<ns>` is the namespace; ids are URI-encoded, so a `:` inside an id cannot make two keys meet):
 *
 * - `<ns>:attempts:endpoint:<endpointId>`: list of AttemptView JSON, newest first, capped
 * - `<ns>:attempts:message:<messageId>`: list of AttemptView JSON, newest first, capped
 * - `<ns>:message:<messageId>`: StoredMessage JSON
 * - `<ns>:dead-letters`: sorted set, member `<endpointId>:<messageId>` (encoded), score failedAt (ms)
 * - `<ns>:dead-letters:endpoint:<endpointId>`: sorted set, member `<messageId>` (encoded), score failedAt
 * - `<ns>:dead-letter:<endpointId>:<messageId>`: DeadLetterView JSON
 *
 * Every write sets the key's TTL to the retention, so history of a quiet endpoint disappears on its own. The
 * sorted sets are also pruned of dead letters that failed longer ago than the retention (one that old is not
 * indexed at all) and trimmed to the cap at each dead-letter write; a record whose index entry was pruned or
 * trimmed expires with its TTL, and listing skips index entries whose record is gone. No MULTI: a batch is a
 * pipeline, written in order on one connection, so a clear after a record lands after it; the capped lists of a
 * batch are pushed by one script over all their keys, last in the pipeline.
 *
 * On a Redis Cluster a batch goes as one pipeline per node (`slotPipeline`: a key's commands stay in order) and
 * the push script runs once per hash slot of its lists; on a single server, one pipeline and one script call.
 */
export function createAttemptLog(
  redis: RedisClient,
  options: AttemptLogOptions = {},
): AttemptLog & { stop(): Promise<void> } {
  const ns = options.namespace ?? 'ampflow:notifier';
  const retentionMs = options.retentionMs ?? 7 * DAY_MS;
  const flushIntervalMs = options.flushIntervalMs ?? 50;
  const minCarryIntervalMs = options.minCarryIntervalMs ?? 50;
  const maxBatch = options.maxBatch ?? 500;
  const endpointAttemptsCap = options.endpointAttemptsCap ?? 1_000;
  const messageAttemptsCap = options.messageAttemptsCap ?? 100;
  const deadLetterCap = options.deadLetterCap ?? 100_000;
  const maxBuffered = maxBatch * MAX_BUFFERED_BATCHES;
  const logger = options.logger;

  const id = encodeURIComponent;
  const endpointAttemptsKey = (endpointId: string) => `${ns}:attempts:endpoint:${id(endpointId)}`;
  const messageAttemptsKey = (messageId: string) => `${ns}:attempts:message:${id(messageId)}`;
  const messageKey = (messageId: string) => `${ns}:message:${id(messageId)}`;
  const deadLettersKey = `${ns}:dead-letters`;
  const endpointDeadLettersKey = (endpointId: string) => `${ns}:dead-letters:endpoint:${id(endpointId)}`;
  const deadLetterMember = (endpointId: string, messageId: string) => `${id(endpointId)}:${id(messageId)}`;
  const deadLetterKey = (endpointId: string, messageId: string) =>
    `${ns}:dead-letter:${deadLetterMember(endpointId, messageId)}`;

  let buffer: Entry[] = [];
  const inFlight = new Set<Promise<void>>();
  let timer: NodeJS.Timeout | null = null;
  let dropped = 0;
  let failing = false;
  let stopped = false;
  /** When a batch was last sent (its own pipeline, or carried). */
  let sentAt = -Infinity;

  function dropWrites(count: number, error: unknown, what: string): void {
    dropped += count;
    // Once per failing streak: Redis being down must not write a line every flush interval.
    if (!failing)
      logger?.warn({ err: error, dropped: count }, `attempt log: ${what}; history writes dropped`);
    failing = true;
  }

  /** What a batch added to a pipeline: where its commands start, and the push script calls' arguments. */
  interface Filled {
    batch: Entry[];
    start: number;
    /** One call per hash slot on a Redis Cluster (a script's keys must share one there), else at most one. */
    pushArgs: string[][];
  }

  /** Adds a batch's commands to `pipeline` (the capped lists' script last). */
  function fill(pipeline: ChainableCommander, batch: Entry[]): Filled {
    const start = pipeline.length;
    const lists: ListPushes = new Map();
    for (const entry of batch) entry(pipeline, lists);
    // Every capped list of the batch in one script call (LPUSH, LTRIM, PEXPIRE per list, as three commands
    // each would), last in the batch. Values pushed in order, so the newest ends up first.
    const pushArgs: string[][] = [];
    for (const group of partitionForCommands(redis, [...lists], ([key]) => key)) {
      const keys: string[] = [];
      const argv: string[] = [String(retentionMs)];
      for (const [key, { cap, values }] of group) {
        keys.push(key);
        argv.push(String(cap), String(values.length));
        for (const value of values) argv.push(value);
      }
      const args = [String(keys.length), ...keys, ...argv];
      pushArgs.push(args);
      pipeline.evalsha(PUSH_LISTS_SHA, ...(args as [string, ...string[]]));
    }
    return { batch, start, pushArgs };
  }

  /** Checks a filled batch's replies (those of its own commands, in order). */
  async function settle(filled: Filled, replies: Array<[Error | null, unknown]>): Promise<void> {
    const { batch, pushArgs } = filled;
    try {
      // The push script's calls are the batch's last commands.
      const scripts = replies.length - pushArgs.length;
      const again: Array<Promise<unknown>> = [];
      pushArgs.forEach((args, i) => {
        const error = replies[scripts + i]?.[0];
        if (error && String(error.message).startsWith('NOSCRIPT')) {
          // First use on this Redis (or after a restart or SCRIPT FLUSH): the script itself, which loads it.
          again.push(redis.eval(PUSH_LISTS_SCRIPT, ...(args as [string, ...string[]])));
          replies[scripts + i] = [null, null];
        }
      });
      await Promise.all(again);
      const firstError = replies.find(([error]) => error)?.[0];
      if (firstError) {
        // Commands are not tied back to entries: count the batch as lost, since which history survived is unknown.
        dropWrites(batch.length, firstError, 'a batch failed in part');
        return;
      }
      if (failing) logger?.info({ droppedWrites: dropped }, 'attempt log: Redis writes succeed again');
      failing = false;
    } catch (error) {
      dropWrites(batch.length, error, 'a batch failed');
    }
  }

  async function write(batch: Entry[]): Promise<void> {
    try {
      const pipeline = slotPipeline(redis);
      const filled = fill(pipeline, batch);
      await settle(filled, ((await pipeline.exec()) ?? []) as Array<[Error | null, unknown]>);
    } catch (error) {
      dropWrites(batch.length, error, 'a batch failed');
    }
  }

  /** The next batch of the buffer, taken out of it. */
  function nextBatch(): Entry[] {
    const batch = buffer.length <= maxBatch ? buffer : buffer.slice(0, maxBatch);
    buffer = buffer.length <= maxBatch ? [] : buffer.slice(maxBatch);
    return batch;
  }

  function drain(): void {
    while (buffer.length > 0 && inFlight.size < MAX_IN_FLIGHT) {
      const batch = nextBatch();
      sentAt = performance.now();
      const sent: Promise<void> = write(batch).finally(() => {
        inFlight.delete(sent);
        if (buffer.length >= maxBatch) drain();
        else schedule();
      });
      inFlight.add(sent);
    }
  }

  function schedule(): void {
    if (timer !== null || buffer.length === 0 || stopped) return;
    timer = setTimeout(() => {
      timer = null;
      drain();
    }, flushIntervalMs);
    timer.unref();
  }

  function push(entry: Entry): void {
    if (buffer.length >= maxBuffered) {
      // Redis is not keeping up (or is away): the oldest history goes first.
      buffer.shift();
      dropWrites(1, new Error('buffer full'), 'the write buffer is full');
    }
    buffer.push(entry);
    if (buffer.length >= maxBatch && !stopped) drain();
    else schedule();
  }

  async function flush(): Promise<void> {
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
    while (buffer.length > 0 || inFlight.size > 0) {
      drain();
      await Promise.all(inFlight);
    }
  }

  const parseAll = <T>(values: ReadonlyArray<string | null>): T[] =>
    values.filter((v): v is string => v !== null).map((v) => JSON.parse(v) as T);

  async function deadLetters(filter: { endpointId?: string; limit: number }): Promise<DeadLetterView[]> {
    await flush();
    if (filter.limit <= 0) return [];
    let recordKeys: string[];
    if (filter.endpointId !== undefined) {
      const endpointId = filter.endpointId;
      const messageIds = await redis.zrevrange(endpointDeadLettersKey(endpointId), 0, filter.limit - 1);
      recordKeys = messageIds.map((m) => `${ns}:dead-letter:${id(endpointId)}:${m}`);
    } else {
      const members = await redis.zrevrange(deadLettersKey, 0, filter.limit - 1);
      recordKeys = members.map((member) => `${ns}:dead-letter:${member}`);
    }
    if (recordKeys.length === 0) return [];
    return parseAll<DeadLetterView>(await mget(redis, recordKeys));
  }

  return {
    record(attempt) {
      const json = JSON.stringify(attempt);
      push((_p, lists) => {
        const add = (key: string, cap: number) => {
          const list = lists.get(key);
          if (list) list.values.push(json);
          else lists.set(key, { cap, values: [json] });
        };
        add(endpointAttemptsKey(attempt.endpointId), endpointAttemptsCap);
        add(messageAttemptsKey(attempt.messageId), messageAttemptsCap);
      });
    },

    async forEndpoint(endpointId, limit) {
      await flush();
      if (limit <= 0) return [];
      const items = await redis.lrange(endpointAttemptsKey(endpointId), 0, limit - 1);
      return parseAll<AttemptView>(items);
    },

    async forMessage(messageId) {
      await flush();
      return parseAll<AttemptView>(await redis.lrange(messageAttemptsKey(messageId), 0, -1));
    },

    saveMessages(messages) {
      for (const message of messages) {
        const json = JSON.stringify(message);
        push((p) => p.set(messageKey(message.id), json, 'PX', retentionMs));
      }
    },

    async getMessage(messageId) {
      await flush();
      const json = await redis.get(messageKey(messageId));
      return json === null ? null : (JSON.parse(json) as StoredMessage);
    },

    recordDeadLetter(dl) {
      const json = JSON.stringify(dl);
      const failedAtMs = Date.parse(dl.failedAt);
      const score = Number.isFinite(failedAtMs) ? failedAtMs : Date.now();
      push((p) => {
        const cutoff = Date.now() - retentionMs;
        // Failed longer ago than the retention: outside the index (it would be pruned below at once).
        if (score < cutoff) return;
        p.set(deadLetterKey(dl.endpointId, dl.messageId), json, 'PX', retentionMs);
        for (const [key, member] of [
          [deadLettersKey, deadLetterMember(dl.endpointId, dl.messageId)],
          [endpointDeadLettersKey(dl.endpointId), id(dl.messageId)],
        ] as const) {
          p.zadd(key, score, member)
            .zremrangebyscore(key, '-inf', `(${cutoff}`)
            .zremrangebyrank(key, 0, -(deadLetterCap + 1))
            .pexpire(key, retentionMs);
        }
      });
    },

    clearDeadLetter(messageId, endpointId) {
      push((p) => {
        p.zrem(deadLettersKey, deadLetterMember(endpointId, messageId))
          .zrem(endpointDeadLettersKey(endpointId), id(messageId))
          .del(deadLetterKey(endpointId, messageId));
      });
    },

    deadLetters,
    flush,

    enqueueWrite(write) {
      push((p) => write(p));
    },

    carry(pipeline) {
      if (buffer.length === 0) return undefined;
      const at = performance.now();
      if (at - sentAt < minCarryIntervalMs) return undefined;
      sentAt = at;
      const filled = fill(pipeline, nextBatch());
      const end = pipeline.length;
      // Counted as in flight, so `flush` (and every read after it) waits for it as for a batch of its own.
      let release!: () => void;
      const carried = new Promise<void>((resolve) => (release = resolve));
      inFlight.add(carried);
      return (replies) => {
        const settled =
          replies instanceof Error
            ? Promise.resolve(dropWrites(filled.batch.length, replies, 'a batch failed'))
            : settle(filled, replies.slice(filled.start, end) as Array<[Error | null, unknown]>);
        void settled.finally(() => {
          inFlight.delete(carried);
          release();
          if (buffer.length >= maxBatch) drain();
          else schedule();
        });
      };
    },

    get droppedWrites() {
      return dropped;
    },

    async stop() {
      stopped = true;
      await flush();
    },
  };
}
