import type { Logger } from '@ampflow/observability';
import { abortableSleep } from '@ampflow/runtime';
import type { BatchHandler, PipelineRecord } from '../pipeline/pipelined-consumer';
import type { DoneMarks } from './done-marks';
import type { DeadLetterInfo } from './durable-writer';
import { decodeWorkItem, type WorkItem } from './work-item';

/**
 * Reads a retry tier: each work item is held (in memory, its offset not committed) until it is due, then
 * handed to the dispatcher. A stop or a rebalance lets held items go uncommitted: the next reader holds them.
 */
export function createRetryReader(deps: {
  submit(item: WorkItem, signal: AbortSignal): Promise<boolean>;
  deadLetterSource(record: PipelineRecord, info: DeadLetterInfo): Promise<boolean>;
  /** Which records were already done, so one read again after a crash is not delivered twice. */
  marks?: DoneMarks;
  logger: Logger;
  now?: () => number;
}): BatchHandler {
  const now = deps.now ?? Date.now;
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
        return deps.deadLetterSource(record, {
          reason: 'undecodable',
          attempts: 0,
          lastStatus: null,
          lastError: error instanceof Error ? error.message : String(error),
          failedAt: now(),
        });
      }
      const waitMs = item.dueAt - now();
      if (waitMs > 0) await abortableSleep(waitMs, signal);
      if (signal.aborted) return false;
      const key = deps.marks?.keyOf(item, 'tier');
      if (key && (await deps.marks!.done([key]))[0]) return true;
      const durable = await deps.submit(item, signal);
      if (durable && key) deps.marks!.mark(key);
      return durable;
    });
}
