import { loadConfig, port, positiveInt, redisEnv, registryEnv, secret, sharedEnv, z } from '@ampflow/config';

export const notifierEnv = z.object({
  ...sharedEnv,
  ...registryEnv,
  ...redisEnv,
  HTTP_PORT: port(8090),
  NOTIFIER_ADMIN_TOKEN: secret(),
  SHUTDOWN_DRAIN_MS: positiveInt(10_000),
});

export type NotifierConfig = z.infer<typeof notifierEnv>;

export function readConfig(env: NodeJS.ProcessEnv = process.env): NotifierConfig {
  return loadConfig(notifierEnv, env);
}
