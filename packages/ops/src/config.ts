import { loadConfig, redisEnv, sharedEnv, z } from '@ampflow/config';

/**
 * The variables the ops tools read: the services' Kafka settings, and for `reprocess --redeliver` the
 * notifier's Redis (its URL and NOTIFIER_REDIS_NAMESPACE); logs quieter by default (stderr).
 */
export const opsEnv = z.object({
  KAFKA_BROKERS: sharedEnv.KAFKA_BROKERS,
  KAFKA_TOPIC_PREFIX: sharedEnv.KAFKA_TOPIC_PREFIX,
  REDIS_URL: redisEnv.REDIS_URL,
  NOTIFIER_REDIS_NAMESPACE: z.string().min(1).default('ampflow:notifier'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('warn'),
});

export type OpsConfig = z.infer<typeof opsEnv>;

export function readOpsConfig(env: Readonly<Record<string, string | undefined>>): OpsConfig {
  return loadConfig(opsEnv, env);
}
