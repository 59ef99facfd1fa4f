import type { Logger } from '@ampflow/observability';
import type { ConsumedRecord as PipelineRecord, TakeHandler as BatchHandler } from '@ampflow/kafka';
import type { DoneMarks } from './done-marks';
import type { DeadLetterInfo } from './durable-writer';
import { decodeWorkItem, type WorkItem } from './work-item';

/**
 * Reads a retry tier: each work item is held (in memory, its offset not committed) until it is due, then
 * handed on (`submit`: written to the deliveries topic). A stop or a rebalance lets held items go uncommitted:
 * the next reader holds them. The deliveries topic is read by the same reader with `notBefore` (the handover)
 * and its own done marks (`markKeyOf`), handing each item to the dispatcher.
 */
export function createRetryReader(deps: {
  submit(item: WorkItem, signal: AbortSignal): Promise<boolean>;
  /** A partition's records are held until this time too (epoch ms), whatever their due time. */
  notBefore?: (signal: AbortSignal, recordTimestampMs: number) => number;
  /** The done mark of a record (default `marks.keyOf(item, 'tier')`). */
  markKeyOf?: (marks: DoneMarks, item: WorkItem) => string;
  /**
   * Whether a record may have been read before (default: always), so its done mark is checked; a record that
   * cannot have been is only marked.
   */
  mayBeReadBefore?: (recordTimestampMs: number, signal: AbortSignal) => boolean;
  deadLetterSource(record: PipelineRecord, info: DeadLetterInfo, signal: AbortSignal): Promise<boolean>;
  /** Which records were already done, so one read again after a crash is not delivered twice. */
  marks?: DoneMarks;
  logger: Logger;
  now?: () => number;
}): BatchHandler {
  const now = deps.now ?? Date.now;
  /**
   * Held records waiting for their due time, per partition signal; one abort listener per signal wakes them all
   * (a listener per held record would make thousands of adds and removes on one signal slow).
   */
  const holds = new WeakMap<AbortSignal, Set<() => void>>();
  function holdUntil(dueAt: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.resolve();
    let waiting = holds.get(signal);
    if (!waiting) {
      const set = new Set<() => void>();
      waiting = set;
      holds.set(signal, set);
      signal.addEventListener(
        'abort',
        () => {
          for (const wake of set) wake();
          set.clear();
        },
        { once: true },
      );
    }
    const set = waiting;
    return new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        set.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, Math.max(0, dueAt - now()));
      set.add(wake);
    });
  }

  /**
   * Done checks of the records that came due in the same turn of the event loop, read in one MGET: records held
   * to one due time (a deferred batch, a retry wave) wake together, and were one round trip each.
   */
  let pendingChecks: Array<{ key: string; resolve: (check: { done: boolean; generation: number }) => void }> =
    [];
  function checkDone(marks: DoneMarks, key: string): Promise<{ done: boolean; generation: number }> {
    return new Promise((resolve) => {
      if (pendingChecks.length === 0) {
        setImmediate(() => {
          const checks = pendingChecks;
          pendingChecks = [];
          // `done` answers "not done" for all when Redis fails; anything else counts the same (deliver rather
          // than drop), never leaving a record waiting for its check.
          marks
            .done(
              checks.map((c) => c.key),
              'tier',
            )
            .catch(() => ({ done: [] as boolean[], generation: 0 }))
            .then(({ done, generation }) =>
              checks.forEach((c, i) => c.resolve({ done: done[i] ?? false, generation })),
            )
            .catch(() => undefined);
        });
      }
      pendingChecks.push({ key, resolve });
    });
  }

  return async (records, signal) =>
    records.map(async (record) => {
      let item: WorkItem;
      try {
        item = decodeWorkItem(record.message.value);
      } catch (error) {
        deps.logger.warn(
          { err: error, topic: record.topic, offset: record.message.offset },
          'not a work item',
        );
        return deps.deadLetterSource(
          record,
          {
            reason: 'undecodable',
            attempts: 0,
            lastStatus: null,
            lastError: error instanceof Error ? error.message : String(error),
            failedAt: now(),
          },
          signal,
        );
      }
      // Timers may fire a millisecond early: hold until the due time has really come.
      const dueAt = Math.max(item.dueAt, deps.notBefore?.(signal, Number(record.message.timestamp)) ?? 0);
      while (dueAt > now() && !signal.aborted) await holdUntil(dueAt, signal);
      if (signal.aborted) return false;
      const marks = deps.marks;
      const key = marks && (deps.markKeyOf ? deps.markKeyOf(marks, item) : marks.keyOf(item, 'tier'));
      const check =
        marks && key && (deps.mayBeReadBefore?.(Number(record.message.timestamp), signal) ?? true)
          ? await checkDone(marks, key)
          : { done: false, generation: 0 };
      if (check?.done) return true;
      const durable = await deps.submit(item, signal);
      if (durable && marks && key) marks.mark(key, check.generation);
      return durable;
    });
}
