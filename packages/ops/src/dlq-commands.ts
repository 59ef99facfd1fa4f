import type { Kafka, Message } from 'kafkajs';
import { createReliableProducer, withTimeout } from '@ampflow/kafka';
import type { Logger } from '@ampflow/observability';
import {
  describeDeadLetter,
  matchesFilter,
  redriveMessage,
  sampleRow,
  summarize,
  type DeadLetterFilter,
  type DeadLetterInfo,
  type DeadLetterSummary,
  type SampleRow,
} from './dead-letters';
import { readToEnd } from './topic-reader';

export interface InspectReport {
  topic: string;
  summary: DeadLetterSummary;
  sample: SampleRow[];
}

/** Reads a dead-letter topic to its end (moving no group's position) and summarizes it. */
export async function inspectDeadLetters(
  kafka: Kafka,
  options: { topic: string; sample: number; groupId: string },
): Promise<InspectReport> {
  const infos: DeadLetterInfo[] = [];
  const sample: SampleRow[] = [];
  await readToEnd(kafka, {
    topic: options.topic,
    groupId: options.groupId,
    fromCommitted: false,
    commit: false,
    onBatch: async (records) => {
      for (const record of records) {
        infos.push(describeDeadLetter(record));
        if (sample.length < options.sample) sample.push(sampleRow(record));
      }
    },
  });
  return { topic: options.topic, summary: summarize(infos), sample };
}

export interface RedriveOptions {
  topic: string;
  filter: DeadLetterFilter;
  /** The group that remembers how far redrives of this topic got. */
  groupId: string;
  /** Read from the earliest dead letter instead of where the last redrive stopped. */
  fromBeginning: boolean;
  /** Count only: produce nothing, move no position. */
  dryRun: boolean;
  logger: Logger;
  now?: () => Date;
  /** How long one batch may wait for the broker's acknowledgement (default 30 s). */
  sendTimeoutMs?: number;
}

export interface RedriveReport {
  topic: string;
  dryRun: boolean;
  /** Dead letters read. */
  read: number;
  /** Passed the filter. */
  matched: number;
  /** Produced to their source topic (0 on a dry run). */
  redriven: number;
  /** Read but not redriven: filtered out, or naming no source topic. */
  skipped: number;
  /** Matched dead letters per source topic. */
  byTarget: Record<string, number>;
}

/**
 * Produces each matching dead letter back to its `source-topic` (original key, value and headers plus
 * `redriven-at`), then commits the position in `groupId`, so the next redrive reads only newer dead letters.
 */
export async function redriveDeadLetters(kafka: Kafka, options: RedriveOptions): Promise<RedriveReport> {
  const now = options.now ?? (() => new Date());
  const log = options.logger.child({ component: 'redrive', topic: options.topic });
  const report: RedriveReport = {
    topic: options.topic,
    dryRun: options.dryRun,
    read: 0,
    matched: 0,
    redriven: 0,
    skipped: 0,
    byTarget: {},
  };
  const producer = options.dryRun ? undefined : createReliableProducer(kafka, { logger: options.logger });
  await producer?.connect();
  try {
    await readToEnd(kafka, {
      topic: options.topic,
      groupId: options.groupId,
      fromCommitted: !options.fromBeginning,
      commit: !options.dryRun,
      onBatch: async (records) => {
        const byTopic = new Map<string, Message[]>();
        for (const record of records) {
          report.read += 1;
          const info = describeDeadLetter(record);
          const matches = matchesFilter(info, options.filter);
          const message = matches ? redriveMessage(record, now()) : undefined;
          if (!message) {
            if (matches) {
              log.warn(
                { partition: record.partition, offset: record.offset },
                'dead letter names no source-topic',
              );
            }
            report.skipped += 1;
            continue;
          }
          report.matched += 1;
          report.byTarget[message.topic] = (report.byTarget[message.topic] ?? 0) + 1;
          const list = byTopic.get(message.topic) ?? [];
          list.push({ key: message.key, value: message.value, headers: message.headers });
          byTopic.set(message.topic, list);
        }
        if (!producer) return;
        for (const [topic, messages] of byTopic) {
          await withTimeout(
            producer.send(topic, messages),
            options.sendTimeoutMs ?? 30_000,
            'redrive_timeout',
            `no acknowledgement from Kafka for ${messages.length} records to ${topic}`,
          );
          report.redriven += messages.length;
        }
      },
    });
  } finally {
    await producer?.disconnect();
  }
  return report;
}
