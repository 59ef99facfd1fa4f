import { createRedisClient } from '@ampflow/runtime/redis';

/** How long the notifier keeps a done mark (2 days, `services/notifier/src/app.ts`): what a replay skips. */
export const NOTIFIER_DONE_MARK_TTL_HOURS = 48;

/**
 * The Redis key of the notifier's done-mark generation: `doneGenerationKey` in
 * services/notifier/src/delivery/done-marks.ts (duplicated here: packages never import services).
 */
export function notifierDoneGenerationKey(namespace: string): string {
  return `${namespace}:done-generation`;
}

/**
 * Increments the notifier's done-mark generation, so that every notifier instance, at its next batch, counts
 * the deliveries it marked done before as not done: records read again from then on (the reprocessed ones) are
 * delivered again, with their original `webhook-id`. Resolves to the new generation.
 */
export async function bumpDoneGeneration(redisUrl: string, namespace: string): Promise<number> {
  const redis = createRedisClient(redisUrl, {
    lazyConnect: true,
    maxRetriesPerRequest: 2,
    connectTimeout: 5_000,
  });
  try {
    await redis.connect();
    return await redis.incr(notifierDoneGenerationKey(namespace));
  } finally {
    redis.disconnect();
  }
}
