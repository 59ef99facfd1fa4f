import { loadConfig, port, positiveInt, registryEnv, sharedEnv, workHealthEnv, z } from '@ampflow/config';

export const normalizerEnv = z.object({
  ...sharedEnv,
  ...registryEnv,
  ...workHealthEnv,
  HTTP_PORT: port(9102),
  /** Consumer group of the raw topics; instances sharing it share the partitions. */
  NORMALIZER_GROUP_ID: z.string().min(1).default('ampflow-normalizer'),
  /** Partitions of the canonical topics when the normalizer creates them. */
  CANONICAL_TOPIC_PARTITIONS: positiveInt(6),
  SHUTDOWN_DRAIN_MS: positiveInt(10_000),
});

export type NormalizerConfig = z.infer<typeof normalizerEnv>;

export function readConfig(env: NodeJS.ProcessEnv = process.env): NormalizerConfig {
  return loadConfig(normalizerEnv, env);
}
