/**
 * When the deliveries of a partition this instance has just been given may start: `handoverMs` after it first
 * saw the partition's records (a new abort signal means a new assignment: the consumer keeps a partition's
 * signal while it keeps the partition). kafkajs has no revoke hook, and the member that held the partition
 * learns of the move only when the group's new assignment reaches it too, so its attempts in flight may still
 * be running (up to the request timeout) when this member gets the partition; waiting them out keeps an
 * endpoint's concurrency and throttle for the deployment across the move. A partition kept through a
 * rebalance keeps its signal and does not wait.
 */
export function createHandover(options: {
  handoverMs: number;
  now?: () => number;
}): (signal: AbortSignal) => number {
  const now = options.now ?? Date.now;
  const startAt = new WeakMap<AbortSignal, number>();
  return (signal) => {
    let at = startAt.get(signal);
    if (at === undefined) {
      at = now() + options.handoverMs;
      startAt.set(signal, at);
    }
    return at;
  };
}
