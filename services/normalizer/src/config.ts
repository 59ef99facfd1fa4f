import { loadConfig, port, positiveInt, registryEnv, sharedEnv, z } from '@ampflow/config';

export const normalizerEnv = z.object({
  ...sharedEnv,
  ...registryEnv,
  HTTP_PORT: port(9102),
  SHUTDOWN_DRAIN_MS: positiveInt(10_000),
});

export type NormalizerConfig = z.infer<typeof normalizerEnv>;

export function readConfig(env: NodeJS.ProcessEnv = process.env): NormalizerConfig {
  return loadConfig(normalizerEnv, env);
}
