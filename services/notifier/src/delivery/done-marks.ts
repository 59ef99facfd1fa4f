import type Redis from 'ioredis';
import type { Logger } from '@ampflow/observability';
import type { WorkItem } from './work-item';

/**
 * Marks of work items whose work is done (delivered, or handed on durably), so that records read again after a
 * crash (those after the committed offset, which moves only past the longest finished prefix) are not delivered
 * a second time. A mark names one record: for a source record's delivery `<message>:<endpoint>:new`, for a
 * retry-tier record its message, endpoint, attempt, due time and reason (a manual re-send is a new record, so it
 * is never mistaken for a repeat). Marks live in Redis for `ttlSeconds`; without them (Redis flushed or down)
 * a re-read record is delivered again, with the same `webhook-id`: at least once, never lost.
 */
export interface DoneMarks {
  keyOf(item: WorkItem, from: 'source' | 'tier'): string;
  /** Per key, whether it is marked done. A Redis failure answers "not done" for all (deliver rather than drop). */
  done(keys: string[]): Promise<boolean[]>;
  /** Marks a key done (written with the other marks of this event-loop turn, in one pipeline). */
  mark(key: string): void;
  flush(): Promise<void>;
  stop(): Promise<void>;
}

export function createDoneMarks(
  redis: Redis,
  options: { namespace: string; ttlSeconds: number; logger: Logger },
): DoneMarks {
  const prefix = `${options.namespace}:done:`;
  let buffer: string[] = [];
  let failing = false;
  let scheduled = false;
  let flushing: Promise<void> = Promise.resolve();

  function flush(): Promise<void> {
    if (buffer.length === 0) return flushing;
    const keys = buffer;
    buffer = [];
    const pipeline = redis.pipeline();
    for (const key of keys) pipeline.set(key, '1', 'EX', options.ttlSeconds);
    flushing = pipeline.exec().then(
      () => {
        if (failing) options.logger.info('done marks are written again');
        failing = false;
      },
      (error: unknown) => {
        if (!failing)
          options.logger.warn({ err: error }, 'done marks not written; a crash now could repeat deliveries');
        failing = true;
      },
    );
    return flushing;
  }

  return {
    keyOf: (item, from) =>
      from === 'source'
        ? `${prefix}${item.messageId}:${item.endpointId}:new`
        : `${prefix}${item.messageId}:${item.endpointId}:${item.attempt}:${item.dueAt}:${item.reason}`,
    async done(keys) {
      if (keys.length === 0) return [];
      try {
        const values = await redis.mget(keys);
        return values.map((v) => v !== null);
      } catch (error) {
        options.logger.warn({ err: error }, 'done marks not readable; delivering without the check');
        return keys.map(() => false);
      }
    },
    mark(key) {
      buffer.push(key);
      // Written at the end of this turn of the event loop, together with the marks of the same turn: the window
      // in which a crash repeats a delivery is one Redis round trip, not a timer's period.
      if (!scheduled) {
        scheduled = true;
        setImmediate(() => {
          scheduled = false;
          void flush();
        });
      }
    },
    flush,
    async stop() {
      await flush();
    },
  };
}
