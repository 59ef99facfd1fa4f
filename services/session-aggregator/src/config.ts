import { loadConfig, port, positiveInt, redisEnv, registryEnv, sharedEnv, z } from '@ampflow/config';

export const aggregatorEnv = z.object({
  ...sharedEnv,
  ...registryEnv,
  ...redisEnv,
  HTTP_PORT: port(9103),
  /** A session with no reading for this long ends with INACTIVITY_TIMEOUT (6 h). */
  SESSION_INACTIVITY_TIMEOUT_MS: positiveInt(6 * 3600 * 1000),
  SHUTDOWN_DRAIN_MS: positiveInt(10_000),
});

export type AggregatorConfig = z.infer<typeof aggregatorEnv>;

export function readConfig(env: NodeJS.ProcessEnv = process.env): AggregatorConfig {
  return loadConfig(aggregatorEnv, env);
}
