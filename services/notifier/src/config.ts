import {
  flag,
  issuedSecret,
  loadConfig,
  port,
  positiveInt,
  redisEnv,
  registryEnv,
  sharedEnv,
  workHealthEnv,
  z,
} from '@ampflow/config';
import { DEFAULT_RETRY_AFTER_MAX_MS, parseDurationList } from './delivery/retry-schedule';
import { parseCidr } from './delivery/ssrf-guard';
import { parseSecretsKey, type SecretsKey } from './endpoints/secret-box';

/** A duration list such as `0,5s,5m,30m,2h,5h,10h,10h`, parsed to ms. */
const durationList = (defaultValue: string) =>
  z
    .string()
    .default(defaultValue)
    .transform((text, ctx) => {
      try {
        return parseDurationList(text);
      } catch {
        // Like every config message, it names the variable but does not echo its value.
        ctx.addIssue({ code: 'custom', message: 'expected comma-separated durations such as 0,5s,5m,2h' });
        return z.NEVER;
      }
    });

/** Comma- or space-separated CIDRs; empty by default (nothing beyond public addresses is reachable). */
const cidrList = () =>
  z
    .string()
    .default('')
    .transform((text, ctx) => {
      const entries = text.split(/[\s,]+/).filter(Boolean);
      const bad = entries.filter((entry) => {
        try {
          parseCidr(entry);
          return false;
        } catch {
          return true;
        }
      });
      if (bad.length > 0) {
        ctx.addIssue({
          code: 'custom',
          message: `${bad.length} of ${entries.length} entries are not CIDRs such as 10.0.0.0/8 or ::1/128`,
        });
      }
      return entries;
    });

/** `<key id>:<32 bytes as hex or base64>`, parsed to a key; the message never repeats the value. */
const secretsKey = () =>
  z.string().transform((text, ctx): SecretsKey => {
    try {
      return parseSecretsKey(text);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message });
      return z.NEVER;
    }
  });

/** Every variable the notifier reads; see `.env.example` for their meaning. */
export const notifierEnv = z.object({
  ...sharedEnv,
  ...registryEnv,
  ...redisEnv,
  ...workHealthEnv,
  HTTP_PORT: port(8090),
  /** Consumer group of the source topics and the retry tiers; instances sharing it share the partitions. */
  NOTIFIER_GROUP_ID: z.string().min(1).default('ampflow-notifier'),
  /** Redis key prefix of the vehicle directory, plug states and attempt log (default `ampflow:notifier`). */
  NOTIFIER_REDIS_NAMESPACE: z.string().min(1).default('ampflow:notifier'),
  /** Partitions of the retry tier topics when the notifier creates them (6). */
  NOTIFIER_RETRY_TOPIC_PARTITIONS: positiveInt(6),
  /**
   * Partitions of the deliveries topic (`ampflow.notifier.deliveries`) when the notifier creates it (12): the most
   * instances that share the sending, since one partition (one instance) sends to each endpoint.
   */
  NOTIFIER_DELIVERY_TOPIC_PARTITIONS: positiveInt(12),
  /**
   * How long an instance given a deliveries partition waits before sending its deliveries, ms (default
   * NOTIFIER_REQUEST_TIMEOUT_MS + 2 s): the previous owner's attempts in flight finish first, so an endpoint's
   * limits hold across a rebalance.
   */
  NOTIFIER_HANDOVER_MS: z.coerce.number().int().positive().optional(),
  /** Deliveries queued in memory per endpoint; beyond it they wait in the first retry tier (1,000). */
  NOTIFIER_MAX_QUEUE_PER_ENDPOINT: positiveInt(1_000),
  /** How long attempts, dead-letter entries and message bodies stay in the Redis attempt log, ms (7 days). */
  NOTIFIER_ATTEMPT_RETENTION_MS: positiveInt(7 * 24 * 3_600_000),
  /** Bearer token of the admin API; at least 32 characters. */
  NOTIFIER_ADMIN_TOKEN: issuedSecret(),
  /** Encrypts endpoint signing secrets in the endpoints topic (AES-256-GCM): `<key id>:<32 bytes>`. */
  NOTIFIER_SECRETS_KEY: secretsKey(),
  /** During a key rotation, the key being replaced: still decrypts, never encrypts. */
  NOTIFIER_SECRETS_KEY_PREVIOUS: secretsKey().optional(),
  SHUTDOWN_DRAIN_MS: positiveInt(10_000),
  /** Delay before each delivery attempt (Svix's schedule by default); jitter ±20 % is applied on top. */
  NOTIFIER_RETRY_SCHEDULE: durationList('0,5s,5m,30m,2h,5h,10h,10h'),
  /** Longest `Retry-After` honoured, ms (1 h). */
  NOTIFIER_RETRY_AFTER_MAX_MS: positiveInt(DEFAULT_RETRY_AFTER_MAX_MS),
  /** Non-public networks endpoints may resolve to (CIDRs). Default none: loopback and private refused. */
  NOTIFIER_ALLOWED_NETWORKS: cidrList(),
  /** Allow `http://` endpoints. Default false: https only. */
  NOTIFIER_ALLOW_HTTP: flag(false),
  /** A delivery attempt without a complete response within this is a timeout, ms (15 s). */
  NOTIFIER_REQUEST_TIMEOUT_MS: positiveInt(15_000),
  /** Attempts in flight per endpoint (10). */
  NOTIFIER_ENDPOINT_CONCURRENCY: positiveInt(10),
  /** After a secret rotation, how long the old secret still signs too, ms (24 h). */
  NOTIFIER_SECRET_ROTATION_OVERLAP_MS: z.coerce
    .number()
    .int()
    .min(0)
    .default(24 * 3_600_000),
  /** An endpoint failing without a success for this long is disabled, ms (5 days). */
  NOTIFIER_DISABLE_AFTER_FAILING_MS: positiveInt(5 * 24 * 3_600_000),
  /** Consecutive failures that open an endpoint's circuit (5). */
  NOTIFIER_CIRCUIT_FAILURES: positiveInt(5),
  /** How long an open circuit waits before a probe, ms (60 s). */
  NOTIFIER_CIRCUIT_COOLDOWN_MS: positiveInt(60_000),
});

/** Two keys under one id could not be told apart when opening a record. */
const checkedEnv = notifierEnv.superRefine((config, ctx) => {
  if (config.NOTIFIER_SECRETS_KEY_PREVIOUS?.kid === config.NOTIFIER_SECRETS_KEY.kid) {
    ctx.addIssue({
      code: 'custom',
      path: ['NOTIFIER_SECRETS_KEY_PREVIOUS'],
      message: 'has the same key id as NOTIFIER_SECRETS_KEY; give the new key a new id',
    });
  }
});

export type NotifierConfig = z.infer<typeof notifierEnv>;

export function readConfig(env: NodeJS.ProcessEnv = process.env): NotifierConfig {
  return loadConfig(checkedEnv, env);
}
