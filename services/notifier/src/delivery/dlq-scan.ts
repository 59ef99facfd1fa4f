import { randomUUID } from 'node:crypto';
import type { IHeaders, Kafka } from 'kafkajs';
import { DeadLetterHeaders } from '@ampflow/contracts';
import type { Logger } from '@ampflow/observability';
import { DependencyError } from '@ampflow/runtime';
import type { EventRouting } from '../events/customer-events';
import { DeliveryDlqHeaders } from './durable-writer';

/** One record of the deliveries DLQ, read back. */
export interface DeadLetterRecord {
  messageId: string;
  endpointId: string;
  type: string;
  body: string;
  routing: EventRouting;
  sourceTimestampMs: number;
  reason: string;
  timestampMs: number;
}

const header = (headers: IHeaders | undefined, name: string): string | undefined => {
  const value = headers?.[name];
  if (value === undefined) return undefined;
  return (Array.isArray(value) ? value[0] : value)?.toString();
};

/** Reads a DLQ record's delivery back; null for a record that is not a delivery (an undecodable source). */
export function readDeadLetter(message: {
  headers?: IHeaders;
  value: Buffer | null;
  timestamp: string;
}): DeadLetterRecord | null {
  const messageId = header(message.headers, DeliveryDlqHeaders.messageId);
  const endpointId = header(message.headers, DeliveryDlqHeaders.endpointId);
  const type = header(message.headers, DeliveryDlqHeaders.eventType);
  const routing = header(message.headers, DeliveryDlqHeaders.routing);
  if (!messageId || !endpointId || !type || !routing || message.value === null) return null;
  let parsedRouting: EventRouting;
  try {
    parsedRouting = JSON.parse(routing) as EventRouting;
  } catch {
    return null; // not one of ours; skipped rather than failing every scan
  }
  return {
    messageId,
    endpointId,
    type,
    body: message.value.toString('utf8'),
    routing: parsedRouting,
    sourceTimestampMs: Number(
      header(message.headers, DeliveryDlqHeaders.sourceTimestamp) ?? message.timestamp,
    ),
    reason: header(message.headers, DeadLetterHeaders.errorCode) ?? 'unknown',
    timestampMs: Number(message.timestamp),
  };
}

/**
 * Reads the deliveries DLQ from the first record at or after `sinceMs` up to its end at the time of the call,
 * keeping the records `keep` accepts. The DLQ is the durable record of what failed, so this works after
 * Redis lost its index. A throwaway consumer group, deleted afterwards.
 */
export async function scanDeadLetters(options: {
  kafka: Kafka;
  topic: string;
  sinceMs: number;
  keep: (record: DeadLetterRecord) => boolean;
  logger: Logger;
  timeoutMs?: number;
}): Promise<DeadLetterRecord[]> {
  const { kafka, topic } = options;
  const admin = kafka.admin();
  await admin.connect();
  const groupId = `ampflow-notifier-dlq-scan-${randomUUID()}`;
  try {
    const [starts, ends] = await Promise.all([
      admin.fetchTopicOffsetsByTimestamp(topic, options.sinceMs),
      admin.fetchTopicOffsets(topic),
    ]);
    const targets = new Map<number, bigint>();
    const startAt = new Map<number, string>();
    for (const end of ends) {
      const start = starts.find((s) => s.partition === end.partition);
      const from = start && BigInt(start.offset) >= 0n ? BigInt(start.offset) : BigInt(end.high);
      if (from < BigInt(end.high)) {
        targets.set(end.partition, BigInt(end.high));
        startAt.set(end.partition, from.toString());
      }
    }
    if (targets.size === 0) return [];
    const found: DeadLetterRecord[] = [];
    const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 200, allowAutoTopicCreation: false });
    await consumer.connect();
    try {
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new DependencyError('dlq_scan_timeout', 'reading the dead letters took too long')),
          options.timeoutMs ?? 60_000,
        );
        const positions = new Map<number, bigint>();
        const check = () => {
          for (const [partition, target] of targets) if ((positions.get(partition) ?? -1n) < target) return;
          clearTimeout(timer);
          resolve();
        };
        consumer
          .run({
            autoCommit: false,
            eachBatch: async ({ batch }) => {
              const target = targets.get(batch.partition);
              if (target === undefined) return;
              const from = BigInt(startAt.get(batch.partition)!);
              for (const message of batch.messages) {
                if (BigInt(message.offset) >= target) break;
                if (BigInt(message.offset) < from) continue;
                const record = readDeadLetter(message);
                if (record && options.keep(record)) found.push(record);
                positions.set(batch.partition, BigInt(message.offset) + 1n);
              }
              check();
            },
          })
          .then(() => {
            for (const [partition, offset] of startAt) consumer.seek({ topic, partition, offset });
          })
          .catch((error: unknown) => {
            clearTimeout(timer);
            reject(error);
          });
      });
    } finally {
      await consumer.disconnect().catch(() => undefined);
    }
    return found;
  } finally {
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect();
  }
}
