/**
 * The retry topics: one per delay bucket, so that within a topic records fall due roughly in the order they
 * were written and the reader can hold them in memory until due (a record with a long delay never waits behind
 * one with a longer). A delay goes to the largest bucket not above it; waiting up to the next bucket's delay
 * behind earlier records of the same bucket is the most a record can be late, and the reader holds up to
 * thousands of records per partition in memory so that this rarely happens.
 */
export interface RetryTier {
  /** Label used in topic names and metrics: `1s`, `5m`, `2h`. */
  label: string;
  delayMs: number;
}

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

export const RETRY_TIERS: readonly RetryTier[] = [
  { label: '1s', delayMs: SECOND },
  { label: '5s', delayMs: 5 * SECOND },
  { label: '30s', delayMs: 30 * SECOND },
  { label: '5m', delayMs: 5 * MINUTE },
  { label: '30m', delayMs: 30 * MINUTE },
  { label: '2h', delayMs: 2 * HOUR },
  { label: '5h', delayMs: 5 * HOUR },
  { label: '10h', delayMs: 10 * HOUR },
];

/** The tier for a delay: the largest whose delay is at most `delayMs` (the first for shorter delays). */
export function tierFor(delayMs: number, tiers: readonly RetryTier[] = RETRY_TIERS): RetryTier {
  let chosen = tiers[0]!;
  for (const tier of tiers) if (tier.delayMs <= delayMs) chosen = tier;
  return chosen;
}

/** `<prefix>ampflow.notifier.retry.<label>`. */
export function retryTopic(prefix: string, tier: RetryTier): string {
  return `${prefix}ampflow.notifier.retry.${tier.label}`;
}
