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
 * other instance can be sending, so a single notifier starting or restarting delivers at once. (An instance
 * that lost the group but still runs, cut off from Kafka, is no member: it can still finish what it had started.)
 *
 * `mayBeReadBefore`: whether a record may have been read by an earlier owner (or an earlier assignment here),
 * so that its done mark must be checked: only one written before this instance got the partition. A record
 * written since can have been read by nobody else, so the check (a Redis round trip) is skipped. Its timestamp
 * is the writer's clock: a writer whose clock is ahead by more than the time since the assignment makes a
 * re-read record look new, which at worst sends it again with the same `webhook-id` (at least once).
 */
export interface Handover {
  notBefore(signal: AbortSignal): number;
  mayBeReadBefore(recordTimestampMs: number, signal: AbortSignal): boolean;
}

export function createHandover(options: {
  handoverMs: number;
  /** Whether this instance was the group's only member when it was given its partitions (default: never). */
  soleMember?: () => boolean;
  now?: () => number;
}): Handover {
  const now = options.now ?? Date.now;
  /** Per assignment: when its records were first seen, and when its deliveries may start. */
  const assignments = new WeakMap<AbortSignal, { seenAt: number; startAt: number }>();
  const assignment = (signal: AbortSignal) => {
    let found = assignments.get(signal);
    if (found === undefined) {
      const seenAt = now();
      found = { seenAt, startAt: options.soleMember?.() ? seenAt : seenAt + options.handoverMs };
      assignments.set(signal, found);
    }
    return found;
  };
  return {
    notBefore: (signal) => assignment(signal).startAt,
    mayBeReadBefore: (timestampMs, signal) => !(timestampMs > assignment(signal).seenAt),
  };
}
