import { randomBytes } from 'node:crypto';
import type { Admin, Kafka } from 'kafkajs';
import { subscribeWhenReady } from '@ampflow/kafka';
import { DependencyError, ValidationError } from '@ampflow/runtime';
import type { DeadLetterRecord } from './dead-letters';

export interface ReadToEndOptions {
  topic: string;
  /**
   * The group whose committed offsets are the start (`fromCommitted`) and, with `commit`, the group that
   * reads and remembers. Without `commit` a throwaway group reads (deleted afterwards), so nothing is moved.
   */
  groupId: string;
  /** Start at the group's committed offsets (earliest where it has none); false: at the earliest stored. */
  fromCommitted: boolean;
  /** Commit each batch's position in `groupId` once `onBatch` resolved. */
  commit: boolean;
  /** Called with each batch of records below the end offsets taken at the start, in offset order. */
  onBatch: (records: DeadLetterRecord[]) => Promise<void>;
  /** Fail when no record arrives for this long while some are still expected (default 30 s). */
  idleTimeoutMs?: number;
}

export interface ReadToEndResult {
  /** Records handed to `onBatch`. */
  read: number;
}

interface Span {
  start: number;
  end: number;
}

async function withAdmin<T>(kafka: Kafka, fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

/** Each partition's first offset to read and end offset (exclusive), taken before reading starts. */
async function spans(admin: Admin, options: ReadToEndOptions): Promise<Map<number, Span>> {
  const topics = await admin.listTopics();
  if (!topics.includes(options.topic)) {
    throw new ValidationError('unknown_topic', `topic ${options.topic} does not exist`);
  }
  const offsets = await admin.fetchTopicOffsets(options.topic);
  const committed = new Map<number, number>();
  if (options.fromCommitted) {
    const [entry] = await admin.fetchOffsets({ groupId: options.groupId, topics: [options.topic] });
    for (const p of entry?.partitions ?? []) committed.set(p.partition, Number(p.offset));
  }
  const out = new Map<number, Span>();
  for (const p of offsets) {
    const low = Number(p.low);
    const at = committed.get(p.partition) ?? -1;
    out.set(p.partition, { start: at >= low ? at : low, end: Number(p.high) });
  }
  return out;
}

/**
 * Reads `topic` from the start positions to the end offsets it had when called, then stops: records arriving
 * meanwhile are left for the next run. With `commit`, reads as `groupId` and commits after each batch.
 */
export async function readToEnd(kafka: Kafka, options: ReadToEndOptions): Promise<ReadToEndResult> {
  const { topic } = options;
  const idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
  const readerGroup = options.commit
    ? options.groupId
    : `${options.groupId}-read-${randomBytes(6).toString('hex')}`;

  const plan = await withAdmin(kafka, async (admin) => {
    const s = await spans(admin, options);
    const pending = [...s].filter(([, span]) => span.start < span.end);
    if (pending.length === 0) return s;
    // The reading group starts exactly at the computed positions: the committed ones (or earliest), which a
    // throwaway group copies, or the earliest for --from-beginning. setOffsets refuses while the group has
    // members, so two redrives of one topic never run at once.
    try {
      await admin.setOffsets({
        groupId: readerGroup,
        topic,
        partitions: [...s].map(([partition, span]) => ({ partition, offset: String(span.start) })),
      });
    } catch (err) {
      if (/no running instances/.test((err as Error).message)) {
        throw new ValidationError(
          'group_active',
          `consumer group ${readerGroup} has members: another redrive is running; wait for it to finish`,
          { cause: err },
        );
      }
      throw err;
    }
    return s;
  });
  const remaining = new Set([...plan].filter(([, span]) => span.start < span.end).map(([p]) => p));
  if (remaining.size === 0) return { read: 0 };

  const consumer = kafka.consumer({
    groupId: readerGroup,
    maxWaitTimeInMs: 200,
    allowAutoTopicCreation: false,
  });
  let read = 0;
  try {
    await consumer.connect();
    await subscribeWhenReady(consumer, { topics: [topic], fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      let lastProgress = Date.now();
      const idle = setInterval(() => {
        if (Date.now() - lastProgress > idleTimeoutMs) {
          clearInterval(idle);
          reject(
            new DependencyError(
              'read_stalled',
              `no records from ${topic} for ${idleTimeoutMs} ms; partitions not read to their end: ${[...remaining].join(', ')}`,
            ),
          );
        }
      }, 500);
      const finish = () => {
        clearInterval(idle);
        resolve();
      };
      consumer.on(consumer.events.CRASH, ({ payload }) => {
        clearInterval(idle);
        reject(new DependencyError('consumer_crashed', `reading ${topic} failed`, { cause: payload.error }));
      });
      consumer
        .run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
            const span = plan.get(batch.partition);
            if (!span || !remaining.has(batch.partition)) return;
            const records: DeadLetterRecord[] = [];
            let next: number | undefined;
            for (const message of batch.messages) {
              const offset = Number(message.offset);
              if (offset >= span.end) break;
              records.push({
                partition: batch.partition,
                offset: message.offset,
                key: message.key,
                value: message.value,
                headers: message.headers ?? {},
              });
              next = offset + 1;
            }
            if (next === undefined) return;
            await options.onBatch(records);
            read += records.length;
            lastProgress = Date.now();
            resolveOffset(String(next - 1));
            if (options.commit) {
              await consumer.commitOffsets([{ topic, partition: batch.partition, offset: String(next) }]);
            }
            await heartbeat();
            if (next >= span.end) {
              remaining.delete(batch.partition);
              if (remaining.size === 0) finish();
            }
          },
        })
        .catch((err: unknown) => {
          clearInterval(idle);
          reject(err);
        });
    });
  } finally {
    await consumer.disconnect().catch(() => undefined);
    if (!options.commit) {
      await withAdmin(kafka, (admin) => admin.deleteGroups([readerGroup])).catch(() => undefined);
    }
  }
  return { read };
}
