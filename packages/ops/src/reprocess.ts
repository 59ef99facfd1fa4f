import type { Kafka } from 'kafkajs';
import { ValidationError } from '@ampflow/runtime';
import {
  groupIsActive,
  offsetsToSet,
  planReprocess,
  type PartitionOffsets,
  type PlanRow,
} from './offset-plan';

export interface ReprocessOptions {
  /** The raw topics (with KAFKA_TOPIC_PREFIX). */
  topics: readonly string[];
  groupId: string;
  since: Date;
  /** Move the offsets; otherwise only plan. */
  execute: boolean;
  /**
   * With `execute`: bumps the notifier's done-mark generation (see `bumpDoneGeneration`) after the checks
   * and before the offsets move, resolving to the new generation. Without it customers are not sent again
   * what the notifier delivered within its done marks' lifetime.
   */
  redeliver?: () => Promise<number>;
}

export interface ReprocessReport {
  groupId: string;
  since: string;
  executed: boolean;
  groupState: string;
  plan: PlanRow[];
  /** Records the normalizer will read again, over all partitions. */
  toReprocess: number;
  /**
   * What the notifier does with the customer webhooks of the reprocessed records: `skip_delivered` (not sent
   * again where its done marks, 48 h, say they were delivered) or `redeliver` (all sent again, same ids).
   */
  customerWebhooks: 'skip_delivered' | 'redeliver';
  /** The notifier's done-mark generation after the bump (`redeliver` with `execute`), else null. */
  doneGeneration: number | null;
}

/** Raised when the group still has members: offsets of a running group cannot (and must not) be moved. */
export class GroupActiveError extends ValidationError {
  constructor(groupId: string, members: number, state: string) {
    super(
      'group_active',
      `consumer group ${groupId} is ${state} with ${members} member(s): stop the normalizer ` +
        '(every instance) first, then run reprocess again; start it once the offsets are moved',
    );
  }
}

/**
 * Plans, and with `execute` applies, moving the normalizer group's committed offsets on the raw topics back to
 * the first record at or after `since`. Refuses (both ways) while the group has members.
 */
export async function reprocessRawTopics(kafka: Kafka, options: ReprocessOptions): Promise<ReprocessReport> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = options.topics.filter((t) => !existing.has(t));
    if (missing.length > 0)
      throw new ValidationError('unknown_topic', `no such topic: ${missing.join(', ')}`);

    const { groups } = await admin.describeGroups([options.groupId]);
    const group = groups[0] ?? { state: 'Dead', members: [] };
    if (groupIsActive(group)) throw new GroupActiveError(options.groupId, group.members.length, group.state);

    const committedByTopic = new Map<string, Map<number, number>>();
    for (const entry of await admin.fetchOffsets({ groupId: options.groupId, topics: [...options.topics] })) {
      committedByTopic.set(
        entry.topic,
        new Map(entry.partitions.map((p) => [p.partition, Number(p.offset)] as const)),
      );
    }
    const partitions: PartitionOffsets[] = [];
    for (const topic of options.topics) {
      const bounds = await admin.fetchTopicOffsets(topic);
      const atSince = new Map(
        (await admin.fetchTopicOffsetsByTimestamp(topic, options.since.getTime())).map(
          (p) => [p.partition, Number(p.offset)] as const,
        ),
      );
      for (const b of bounds) {
        const committed = committedByTopic.get(topic)?.get(b.partition) ?? -1;
        partitions.push({
          topic,
          partition: b.partition,
          committed: committed >= 0 ? committed : null,
          low: Number(b.low),
          high: Number(b.high),
          sinceOffset: atSince.get(b.partition) ?? Number(b.high),
        });
      }
    }
    const plan = planReprocess(partitions);
    let doneGeneration: number | null = null;
    if (options.execute && options.redeliver) doneGeneration = await options.redeliver();
    if (options.execute) {
      for (const [topic, moves] of offsetsToSet(plan)) {
        await admin.setOffsets({ groupId: options.groupId, topic, partitions: moves });
      }
    }
    return {
      groupId: options.groupId,
      since: options.since.toISOString(),
      executed: options.execute,
      groupState: group.state,
      plan,
      toReprocess: plan.reduce((sum, row) => sum + row.toReprocess, 0),
      customerWebhooks: options.redeliver ? 'redeliver' : 'skip_delivered',
      doneGeneration,
    };
  } finally {
    await admin.disconnect();
  }
}
