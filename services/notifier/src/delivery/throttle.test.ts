import { emptyBucket, takeToken, throttleBurst, type TokenBucket } from './throttle';

/** Start times of `count` attempts taken as soon as the bucket allows, from an empty bucket at 0. */
function schedule(rate: number, count: number, startMs = 0): number[] {
  let bucket: TokenBucket = emptyBucket(startMs);
  let at = startMs;
  const starts: number[] = [];
  while (starts.length < count) {
    const taken = takeToken(bucket, rate, at);
    bucket = taken.bucket;
    if (taken.allowed) starts.push(at);
    else at += taken.waitMs;
  }
  return starts;
}

/** The most starts in any window [t, t + 1000] (closed: both ends count). */
function maxInOneSecond(starts: number[]): number {
  let max = 0;
  for (const [i, from] of starts.entries()) {
    const within = starts.slice(i).filter((t) => t <= from + 1_000).length;
    max = Math.max(max, within);
  }
  return max;
}

describe('throttle', () => {
  it('banks 50 ms of the rate, at least one token', () => {
    expect(throttleBurst(1)).toBe(1);
    expect(throttleBurst(5)).toBe(1);
    expect(throttleBurst(100)).toBe(5);
    expect(throttleBurst(10_000)).toBe(500);
  });

  it('starts empty: the first attempt waits 1/rate (a new owner adds no burst)', () => {
    const first = takeToken(emptyBucket(1_000), 5, 1_000);
    expect(first.allowed).toBe(false);
    expect(first.allowed === false && first.waitMs).toBe(200);
    expect(takeToken(first.bucket, 5, 1_200).allowed).toBe(true);
  });

  it('spaces attempts 1/rate apart: at most rate + burst in any 1 s window', () => {
    const starts = schedule(5, 40);
    for (let i = 1; i < starts.length; i += 1)
      expect(starts[i]! - starts[i - 1]!).toBeGreaterThanOrEqual(200);
    expect(maxInOneSecond(starts)).toBeLessThanOrEqual(5 + throttleBurst(5));
    // Over 40 attempts the rate itself: 39 intervals of 200 ms.
    expect(starts.at(-1)! - starts[0]!).toBe(39 * 200);
  });

  it('after an idle time banks only the burst, not a second of tokens', () => {
    let bucket = emptyBucket(0);
    bucket = takeToken(bucket, 100, 60_000).bucket; // idle for a minute, then one taken
    let allowedAtOnce = 1;
    for (;;) {
      const taken = takeToken(bucket, 100, 60_000);
      if (!taken.allowed) break;
      bucket = taken.bucket;
      allowedAtOnce += 1;
    }
    expect(allowedAtOnce).toBe(throttleBurst(100));
    const starts = schedule(100, 300);
    expect(maxInOneSecond(starts)).toBeLessThanOrEqual(100 + throttleBurst(100));
  });

  it('a token taken late is not lost beyond the burst: the long-run rate holds', () => {
    // Wakes 3 ms late every time (timers): rate 10 still gives 10 per ~1.03 s, never more than the rate.
    let bucket = emptyBucket(0);
    let at = 0;
    const starts: number[] = [];
    while (starts.length < 50) {
      const taken = takeToken(bucket, 10, at);
      bucket = taken.bucket;
      if (taken.allowed) starts.push(at);
      else at += taken.waitMs + 3;
    }
    expect(maxInOneSecond(starts)).toBeLessThanOrEqual(10 + 1);
    expect(starts.at(-1)! - starts[0]!).toBeGreaterThanOrEqual(49 * 100);
  });
});
