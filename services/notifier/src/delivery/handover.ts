/**
 * The deliveries partitions this instance is given, by their abort signal (a new signal means a new assignment:
 * the consumer keeps a partition's signal while it keeps the partition).
 *
 * `notBefore`: when the partition's deliveries may start, `handoverMs` after this instance first saw its records.
 * kafkajs has no revoke hook, and the member that held the partition learns of the move only when the group's
 * new assignment reaches it too, so its attempts in flight may still be running (up to the request timeout)
 * when this member gets the partition; waiting them out keeps an endpoint's concurrency and throttle for the
 * deployment across the move. A partition kept through a rebalance keeps its signal and does not wait.
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

export function createHandover(options: { handoverMs: number; now?: () => number }): Handover {
  const now = options.now ?? Date.now;
  const firstSeen = new WeakMap<AbortSignal, number>();
  const seen = (signal: AbortSignal): number => {
    let at = firstSeen.get(signal);
    if (at === undefined) {
      at = now();
      firstSeen.set(signal, at);
    }
    return at;
  };
  return {
    notBefore: (signal) => seen(signal) + options.handoverMs,
    mayBeReadBefore: (timestampMs, signal) => !(timestampMs > seen(signal)),
  };
}
