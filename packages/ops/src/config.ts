import { loadConfig, sharedEnv, z } from '@ampflow/config';

/** The variables the ops tools read: the services' Kafka settings; logs quieter by default (stderr). */
export const opsEnv = z.object({
  KAFKA_BROKERS: sharedEnv.KAFKA_BROKERS,
  KAFKA_TOPIC_PREFIX: sharedEnv.KAFKA_TOPIC_PREFIX,
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('warn'),
});

export type OpsConfig = z.infer<typeof opsEnv>;

export function readOpsConfig(env: Readonly<Record<string, string | undefined>>): OpsConfig {
  return loadConfig(opsEnv, env);
}
