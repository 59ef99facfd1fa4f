import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { brokerList, loadConfig, positiveInt, secret, sharedEnv, z } from '@ampflow/config';

const loopbackUrl = (port: number) => z.url().default(`http://127.0.0.1:${port}`);

/**
 * What `npm run demo` reads. The defaults are the platform `npm start` runs; the `DEMO_*_URL` variables point the
 * demo at services elsewhere on this machine (the end-to-end test runs them in-process on random ports).
 */
export const demoEnv = z.object({
  KAFKA_BROKERS: brokerList('127.0.0.1:9092'),
  KAFKA_TOPIC_PREFIX: sharedEnv.KAFKA_TOPIC_PREFIX,
  SCHEMA_REGISTRY_URL: z.url().default('http://127.0.0.1:8081/apis/ccompat/v7'),
  DEMO_INGRESS_URL: loopbackUrl(8080),
  DEMO_NORMALIZER_URL: loopbackUrl(9102),
  DEMO_AGGREGATOR_URL: loopbackUrl(9103),
  DEMO_NOTIFIER_URL: loopbackUrl(8090),
  /** How long to wait for every expected record, session and webhook, ms (60 s). */
  DEMO_TIMEOUT_MS: positiveInt(60_000),
  /** The demo's own log lines (kafkajs warnings) go to stderr at this level. */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('error'),
  SMARTCAR_MANAGEMENT_TOKEN: secret(),
  TELEMATICA_WEBHOOK_SECRET: secret(),
  NOTIFIER_ADMIN_TOKEN: secret(),
});

export type DemoConfig = z.infer<typeof demoEnv>;

/** The secrets `npm start` uses; read from the environment, else from `.ampflow/dev-secrets.env`. */
export const SECRET_NAMES = [
  'SMARTCAR_MANAGEMENT_TOKEN',
  'TELEMATICA_WEBHOOK_SECRET',
  'NOTIFIER_ADMIN_TOKEN',
] as const;

/**
 * `NAME=value` lines as `scripts/run-platform.sh` writes and reads them: the value is everything after the
 * first `=` (base64 may end in `=`); blank lines and `#` comments are skipped.
 */
export function parseSecretsFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const at = line.indexOf('=');
    if (line.trim() === '' || line.trimStart().startsWith('#') || at <= 0) continue;
    out[line.slice(0, at).trim()] = line.slice(at + 1);
  }
  return out;
}

/** The environment with each secret it lacks taken from `file` (others there are ignored). */
export function withSecretsFrom(
  env: Readonly<Record<string, string | undefined>>,
  file: Readonly<Record<string, string>>,
): Record<string, string | undefined> {
  const merged: Record<string, string | undefined> = { ...env };
  for (const name of SECRET_NAMES) {
    if (!merged[name] && file[name]) merged[name] = file[name];
  }
  return merged;
}

/** Where `npm start` keeps its state: `AMPFLOW_STATE_DIR`, else `.ampflow/` in the repository. */
export function secretsFilePath(env: Readonly<Record<string, string | undefined>>, repoRoot: string): string {
  return join(env.AMPFLOW_STATE_DIR || join(repoRoot, '.ampflow'), 'dev-secrets.env');
}

/** The demo's configuration; throws `ConfigError` naming every missing or bad variable (never a value). */
export function readDemoConfig(
  env: Readonly<Record<string, string | undefined>>,
  repoRoot: string,
): DemoConfig {
  const path = secretsFilePath(env, repoRoot);
  const file = existsSync(path) ? parseSecretsFile(readFileSync(path, 'utf8')) : {};
  return loadConfig(demoEnv, withSecretsFrom(env, file));
}
