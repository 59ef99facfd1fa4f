/**
 * An endpoint's `throttleRate` (messages per second) as a token bucket that holds little: it refills at `rate`
 * per second and holds at most {@link throttleBurst} tokens, so attempts start about 1/rate apart rather than in
 * bursts of a whole second's worth. Over any 1 s window at most `rate + burst` attempts start (the burst banked
 * before the window, then a second of refill); over longer windows the rate itself. A new owner of an endpoint
 * starts with an empty bucket (its first attempt waits 1/rate), so a partition that moves never adds a burst.
 */
export interface TokenBucket {
  tokens: number;
  refilledAt: number;
}

/** Tokens a bucket banks at most: 50 ms of the rate, at least one (rate 5: 1; rate 100: 5). */
export function throttleBurst(rate: number): number {
  return Math.max(1, Math.floor(rate / 20));
}

/** A bucket with nothing banked, as a new owner starts. */
export function emptyBucket(nowMs: number): TokenBucket {
  return { tokens: 0, refilledAt: nowMs };
}

export type TakeResult =
  { allowed: true; bucket: TokenBucket } | { allowed: false; waitMs: number; bucket: TokenBucket };

/** Takes one token at `nowMs` if there is one, else says how long until there is. */
export function takeToken(bucket: TokenBucket, rate: number, nowMs: number): TakeResult {
  const elapsedMs = Math.max(0, nowMs - bucket.refilledAt);
  const tokens = Math.min(throttleBurst(rate), bucket.tokens + (elapsedMs / 1_000) * rate);
  if (tokens < 1) {
    return {
      allowed: false,
      waitMs: Math.max(1, Math.ceil(((1 - tokens) / rate) * 1_000)),
      bucket: { tokens, refilledAt: nowMs },
    };
  }
  return { allowed: true, bucket: { tokens: tokens - 1, refilledAt: nowMs } };
}
