import { createHash } from 'node:crypto';
import type { ChainableCommander } from 'ioredis';
import { mget, partitionForCommands, slotPipeline, type RedisClient } from '@ampflow/runtime/redis';
import type { CarriedBatch } from './attempt-log';
import type { Logger } from '@ampflow/observability';
import type { WorkItem } from './work-item';

/**
 * The Redis key holding the done-mark generation, next to the marks. `npm run ops -- reprocess --redeliver`
 * increments it (packages/ops/src/redeliver.ts names the same key: packages never import services).
 */
/** How long a done mark lasts (2 days): records read again within it are recognised as done. */
export const DONE_MARK_TTL_SECONDS = 2 * 24 * 3_600;

export function doneGenerationKey(namespace: string): string {
  return `${namespace}:done-generation`;
}

/** What {@link DoneMarks.done} found: per key whether it is done, and the generation read with them. */
export interface DoneCheck {
  done: boolean[];
  /** The done-mark generation at the time of the check (0 when none is stored); marks carry it. */
  generation: number;
}

/**
 * Marks of work items whose work is done (delivered, or handed on durably), so that records read again after a
 * crash (those after the committed offset, which moves only past the longest finished prefix) are not delivered
 * a second time. A mark names one record: for a source record's delivery `<message>:<endpoint>:new`, for a
 * retry-tier record its message, endpoint, attempt, due time and reason (a manual re-send is a new record, so it
 * is never mistaken for a repeat). Marks live in Redis for `ttlSeconds`; without them (Redis flushed or down)
 * a re-read record is delivered again, with the same `webhook-id`: at least once, never lost.
 *
 * A source record's mark counts only in its generation: a deliberate replay (`reprocess --redeliver`) bumps the
 * generation, so replayed records are delivered again (same `webhook-id`) although their deliveries were marked
 * within the 2 days. The generation is read with the marks, in the same MGET, by every instance for every batch,
 * so no instance acts on a stale one. A mark carries the generation read when its record was checked: a bump
 * in between makes it count as older (delivered again), never as newer (skipped). Retry-tier marks ignore the
 * generation: a replay writes new tier records, and a tier record is only ever re-read after a crash.
 */
export interface DoneMarks {
  keyOf(item: WorkItem, from: 'source' | 'tier'): string;
  /** `keyOf(item, 'source')` of a source record's delivery, from its message and endpoint. */
  sourceKeyOf(messageId: string, endpointId: string): string;
  /**
   * Per key (all of `keyOf(..., from)`), whether it is marked done. A Redis failure answers "not done" for all
   * (deliver rather than drop).
   */
  done(keys: string[], from: 'source' | 'tier'): Promise<DoneCheck>;
  /**
   * For a reader that fetches the marks in a read of its own (the fan-out, in its one MGET per batch): the key
   * of the generation, to be read in the same command as the marks, and what the values read mean.
   */
  readonly generationKey: string;
  interpret(
    storedGeneration: string | null,
    values: ReadonlyArray<string | null>,
    from: 'source' | 'tier',
  ): DoneCheck;
  /**
   * Marks a key done with the generation its check read (written with the other marks of this event-loop turn,
   * in one pipeline).
   */
  mark(key: string, generation: number): void;
  flush(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Sets each of KEYS to its value (ARGV[i + 1]) with a TTL of ARGV[1] seconds: one command per batch of marks
 * instead of one SET each (a SET costs the client about as much as the whole script per mark).
 */
const MARK_SCRIPT =
  "for i, key in ipairs(KEYS) do redis.call('SET', key, ARGV[i + 1], 'EX', ARGV[1]) end return #KEYS";
/** Marks per script call (several calls go in one pipeline: one round trip). */
const MARKS_PER_CALL = 500;

export function createDoneMarks(
  redis: RedisClient,
  options: {
    namespace: string;
    ttlSeconds: number;
    logger: Logger;
    /**
     * Adds other buffered writes to each mark write's pipeline (the attempt log's `carry`): one round trip for
     * the marks and the history of the same deliveries.
     */
    carry?: (pipeline: ChainableCommander) => CarriedBatch | undefined;
  },
): DoneMarks {
  const prefix = `${options.namespace}:done:`;
  const generationKey = doneGenerationKey(options.namespace);
  const sourceKeyOf = (messageId: string, endpointId: string) => `${prefix}${messageId}:${endpointId}:new`;
  const ttl = String(options.ttlSeconds);
  const scriptSha = createHash('sha1').update(MARK_SCRIPT).digest('hex');
  let buffer: Array<[key: string, generation: number]> = [];
  let failing = false;
  let scheduled = false;
  /** The write in flight (at most one: marks made meanwhile go in the next, when it has answered). */
  let writing: Promise<void> | null = null;

  async function write(marks: Array<[key: string, generation: number]>): Promise<void> {
    const calls: Array<Array<string>> = [];
    // On a Redis Cluster a script's keys must share a slot: one call per slot there (one pipeline per node).
    for (const group of partitionForCommands(redis, marks, ([key]) => key)) {
      for (let i = 0; i < group.length; i += MARKS_PER_CALL) {
        const chunk = group.slice(i, i + MARKS_PER_CALL);
        calls.push([...chunk.map(([key]) => key), ttl, ...chunk.map(([, generation]) => `g${generation}`)]);
      }
    }
    const add = (pipeline: ChainableCommander, command: 'evalsha' | 'eval') => {
      for (const args of calls) {
        const keys = (args.length - 1) / 2;
        if (command === 'evalsha') pipeline.evalsha(scriptSha, keys, ...args);
        else pipeline.eval(MARK_SCRIPT, keys, ...args);
      }
    };
    const failure = (results: ReadonlyArray<[Error | null, unknown]>) =>
      results.slice(0, calls.length).find(([error]) => error)?.[0];
    try {
      const pipeline = slotPipeline(redis);
      add(pipeline, 'evalsha');
      // The history buffered meanwhile (attempts, message log) goes in the same round trip.
      const carried = options.carry?.(pipeline);
      let results: ReadonlyArray<[Error | null, unknown]>;
      try {
        results = ((await pipeline.exec()) ?? []) as Array<[Error | null, unknown]>;
      } catch (error) {
        carried?.(error instanceof Error ? error : new Error(String(error)));
        throw error;
      }
      carried?.(results);
      let failed = failure(results);
      if (failed && String(failed.message).startsWith('NOSCRIPT')) {
        // First use on this Redis (or after a restart or SCRIPT FLUSH): the script itself, which loads it. The
        // marks only: the carried history was written (or failed) on its own.
        const again = slotPipeline(redis);
        add(again, 'eval');
        failed = failure(((await again.exec()) ?? []) as Array<[Error | null, unknown]>);
      }
      if (failed) throw failed;
      if (failing) options.logger.info('done marks are written again');
      failing = false;
    } catch (error) {
      if (!failing)
        options.logger.warn({ err: error }, 'done marks not written; a crash now could repeat deliveries');
      failing = true;
    }
  }

  /** Sends what is buffered unless a write is in flight (that one sends the rest when it answers). */
  function send(): void {
    if (writing !== null || buffer.length === 0) return;
    const marks = buffer;
    buffer = [];
    writing = write(marks).finally(() => {
      writing = null;
      send();
    });
  }

  async function flush(): Promise<void> {
    send();
    while (writing !== null) {
      await writing;
      send();
    }
  }

  return {
    sourceKeyOf,
    keyOf: (item, from) =>
      from === 'source'
        ? sourceKeyOf(item.messageId, item.endpointId)
        : `${prefix}${item.messageId}:${item.endpointId}:${item.attempt}:${item.dueAt}:${item.reason}`,
    generationKey,
    interpret,
    async done(keys, from) {
      if (keys.length === 0) return { done: [], generation: 0 };
      try {
        const [stored, ...values] = await mget(redis, [generationKey, ...keys]);
        return interpret(stored ?? null, values, from);
      } catch (error) {
        options.logger.warn({ err: error }, 'done marks not readable; delivering without the check');
        return { done: keys.map(() => false), generation: 0 };
      }
    },
    mark(key, generation) {
      buffer.push([key, generation]);
      // Written at the end of this turn of the event loop, together with the marks of the same turn, or, while
      // a write is in flight, as soon as it has answered, together with every mark made meanwhile: the window
      // in which a crash repeats a delivery is one or two Redis round trips, not a timer's period, and under
      // load a write carries many marks.
      if (!scheduled && writing === null) {
        scheduled = true;
        setImmediate(() => {
          scheduled = false;
          send();
        });
      }
    },
    flush,
    async stop() {
      await flush();
    },
  };
}

function interpret(
  storedGeneration: string | null,
  values: ReadonlyArray<string | null>,
  from: 'source' | 'tier',
): DoneCheck {
  const generation = generationOf(storedGeneration);
  return {
    generation,
    done: values.map((v) => v !== null && (from === 'tier' || markGeneration(v) >= generation)),
  };
}

function generationOf(value: string | null): number {
  const n = value === null ? 0 : Number(value);
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
}

/** A mark's generation: `g<n>`; marks written before generations existed (`1`) are generation 0. */
function markGeneration(value: string): number {
  return value.startsWith('g') ? generationOf(value.slice(1)) : 0;
}
