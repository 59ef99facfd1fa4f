/** What the broker says about one partition of a raw topic and the normalizer group's position on it. */
export interface PartitionOffsets {
  topic: string;
  partition: number;
  /** The group's committed offset (next record to read), or null when it has none. */
  committed: number | null;
  /** First offset still stored. */
  low: number;
  /** Offset the next record will get. */
  high: number;
  /** First offset whose timestamp is at or after `--since` (`high` when none is). */
  sinceOffset: number;
}

export type PlanAction = 'rewind' | 'unchanged';

export interface PlanRow {
  topic: string;
  partition: number;
  current: number | null;
  next: number;
  action: PlanAction;
  /** Records the normalizer reads a second time after the move. */
  toReprocess: number;
  reason: string;
}

/**
 * Where each partition's committed offset goes so the normalizer reads again everything from `--since`. It only
 * ever moves back: a partition already behind `--since` keeps its position (moving it forward would skip
 * records never normalized), and one with no committed offset is left alone (the normalizer starts such a
 * partition from its beginning, which includes `--since`).
 */
export function planReprocess(partitions: readonly PartitionOffsets[]): PlanRow[] {
  return partitions
    .map((p): PlanRow => {
      const base = { topic: p.topic, partition: p.partition, current: p.committed };
      if (p.committed === null) {
        return {
          ...base,
          next: p.low,
          action: 'unchanged',
          toReprocess: 0,
          reason: 'no committed offset: read from the beginning anyway',
        };
      }
      const target = Math.max(p.sinceOffset, p.low);
      if (target >= p.committed) {
        return {
          ...base,
          next: p.committed,
          action: 'unchanged',
          toReprocess: 0,
          reason: 'not yet past --since',
        };
      }
      return {
        ...base,
        next: target,
        action: 'rewind',
        toReprocess: p.committed - target,
        reason: 'rewind to --since',
      };
    })
    .sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
}

/** The partitions to move, grouped by topic as `admin.setOffsets` takes them. */
export function offsetsToSet(plan: readonly PlanRow[]): Map<string, { partition: number; offset: string }[]> {
  const byTopic = new Map<string, { partition: number; offset: string }[]>();
  for (const row of plan) {
    if (row.action !== 'rewind') continue;
    const list = byTopic.get(row.topic) ?? [];
    list.push({ partition: row.partition, offset: String(row.next) });
    byTopic.set(row.topic, list);
  }
  return byTopic;
}

/** A consumer group's members can be reading: it has members, or it is in a rebalance. */
export function groupIsActive(group: { state: string; members: readonly unknown[] }): boolean {
  return group.members.length > 0 || !['Empty', 'Dead', 'Unknown'].includes(group.state);
}
