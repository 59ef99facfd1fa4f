/**
 * The deliveries partitions this instance is given, by their abort signal (a new signal means a new assignment:
 * the consumer keeps a partition's signal while it keeps the partition).
 *
 * `notBefore`: when the partition's deliveries may start, `handoverMs` after this instance first saw its records.
 * kafkajs has no revoke hook, and the member that held the partition learns of the move only when the group's
 * new assignment reaches it too, so its attempts in flight may still be running (up to the request timeout)
 * when this member gets the partition; waiting them out keeps an endpoint's concurrency and throttle for the
 * deployment across the move. A partition kept through a rebalance keeps its signal and does not wait, and
 * neither does one given while this instance is the group's only member (`soleMember`, known at each join): no
 * other instance can be sending, so a single notifier starting or restarting delivers at once. Nor does one
 * whose first record was written after this instance joined the group (`joinedAt`): the partition then had
 * nothing unread at the move, so its previous owner had finished (sent or handed to a retry tier) and committed
 * all it read, and has nothing in flight; a fresh deployment or an idle endpoint moves at once. (An instance that
 * lost the group but still runs, cut off from Kafka, is no member: it can still finish what it had started.)
 *
 * `mayBeReadBefore`: whether a record may have been read by an earlier owner (or an earlier assignment here),
 * so that its done mark must be checked: only one written before this instance got the partition. A record
 * written since can have been read by nobody else, so the check (a Redis round trip) is skipped. Its timestamp
 * is the writer's clock: a writer whose clock is ahead by more than the time since the assignment makes a
 * re-read record look new, which at worst sends it again with the same `webhook-id` (at least once).
 */
export interface Handover {
  /** `recordTimestampMs`: the timestamp of the record asked for (the first one of an assignment decides). */
  notBefore(signal: AbortSignal, recordTimestampMs: number): number;
  mayBeReadBefore(recordTimestampMs: number, signal: AbortSignal): boolean;
}

export function createHandover(options: {
  handoverMs: number;
  /** Whether this instance was the group's only member when it was given its partitions (default: never). */
  soleMember?: () => boolean;
  /** When this instance last joined the group (epoch ms), its assignments with it. */
  joinedAt?: () => number;
  now?: () => number;
}): Handover {
  const now = options.now ?? Date.now;
  /** Per assignment: when its records were first seen, and when its deliveries may start. */
  const assignments = new WeakMap<AbortSignal, { seenAt: number; startAt: number }>();
  const assignment = (signal: AbortSignal, recordTimestampMs: number) => {
    let found = assignments.get(signal);
    if (found === undefined) {
      const seenAt = now();
      const joinedAt = options.joinedAt?.();
      const nothingPending = joinedAt !== undefined && joinedAt > 0 && recordTimestampMs > joinedAt;
      const startAt = options.soleMember?.() || nothingPending ? seenAt : seenAt + options.handoverMs;
      found = { seenAt, startAt };
      assignments.set(signal, found);
    }
    return found;
  };
  return {
    notBefore: (signal, recordTimestampMs) => assignment(signal, recordTimestampMs).startAt,
    mayBeReadBefore: (timestampMs, signal) => !(timestampMs > assignment(signal, timestampMs).seenAt),
  };
}
