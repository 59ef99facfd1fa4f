import {
  ConfigError,
  loadConfig,
  port,
  positiveInt,
  redisEnv,
  secret,
  sharedEnv,
  workHealthEnv,
  z,
} from '@ampflow/config';
import { TOPIC_CLASSES } from '@ampflow/contracts';
import { DEFAULT_HTTP_SERVER_LIMITS } from '@ampflow/runtime';
import { DEFAULT_REQUEST_DEADLINE_MS } from './request-deadline';

const svixSecret = z.string().regex(/^whsec_[A-Za-z0-9+/=]+$/, 'expected whsec_<base64>');

/** Every variable the ingress reads; see `.env.example` for their meaning. */
export const ingressEnv = z.object({
  ...sharedEnv,
  ...redisEnv,
  ...workHealthEnv,
  HTTP_PORT: port(8080),
  HTTP_HOST: z.string().default('0.0.0.0'),
  SMARTCAR_MANAGEMENT_TOKEN: secret(),
  /** One secret, or two separated by a comma or space while the provider rotates them. */
  TELEMATICA_WEBHOOK_SECRET: secret()
    .transform((v) => v.split(/[\s,]+/).filter(Boolean))
    .pipe(z.array(svixSecret).min(1).max(2)),
  MAX_BODY_BYTES: positiveInt(256 * 1024),
  /** Request-body bytes held at once (64 MiB); beyond it webhooks are answered 503 `ingress_busy`. */
  INGRESS_MAX_INFLIGHT_BYTES: positiveInt(64 * 1024 * 1024),
  /** How long a request waits for Kafka's acknowledgement before it is answered 503. */
  KAFKA_PUBLISH_TIMEOUT_MS: positiveInt(5_000),
  /**
   * How long a webhook arriving into an idle producer waits for others to share its produce request, in ms
   * (0: sent at once). Its answer still waits for the broker's acknowledgement.
   */
  KAFKA_LINGER_MS: z.coerce.number().int().min(0).max(1_000).default(0),
  /**
   * Request pacing, in ms (0: off): a produce request goes out no sooner than this after the previous one. A
   * webhook into a producer that sent nothing for that long goes out at once; faster ones share a request.
   */
  KAFKA_REQUEST_INTERVAL_MS: z.coerce.number().int().min(0).max(1_000).default(5),
  /** Time from a webhook's arrival to its answer, every step included; past it 503 `deadline_exceeded`. */
  INGRESS_REQUEST_DEADLINE_MS: positiveInt(DEFAULT_REQUEST_DEADLINE_MS),
  /** Time a client has to send its request headers (slowloris clients are cut off by it); 408 past it. */
  HTTP_HEADERS_TIMEOUT_MS: positiveInt(DEFAULT_HTTP_SERVER_LIMITS.headersTimeoutMs),
  /** Time a client has to send a whole request; at least HTTP_HEADERS_TIMEOUT_MS. */
  HTTP_REQUEST_TIMEOUT_MS: positiveInt(DEFAULT_HTTP_SERVER_LIMITS.requestTimeoutMs),
  /** How long an idle keep-alive connection stays open; above the load balancer's idle timeout. */
  HTTP_KEEP_ALIVE_TIMEOUT_MS: positiveInt(DEFAULT_HTTP_SERVER_LIMITS.keepAliveTimeoutMs),
  /** Connections open at once; further ones are closed unanswered. */
  HTTP_MAX_CONNECTIONS: positiveInt(DEFAULT_HTTP_SERVER_LIMITS.maxConnections),
  /** How long a delivered event id is remembered to drop duplicate deliveries (7 days). */
  DEDUP_TTL_SECONDS: positiveInt(7 * 24 * 3600),
  RAW_TOPIC_PARTITIONS: positiveInt(6),
  /**
   * `retention.ms` of the raw topics, the archive `npm run ops -- reprocess` replays (90 days); -1 keeps them
   * forever. Applied at start, also to existing raw topics whose retention differs.
   */
  RAW_RETENTION_MS: z.coerce
    .number()
    .int()
    .refine((v) => v === -1 || v > 0, 'expected a positive number of ms, or -1 for forever')
    .default(TOPIC_CLASSES.raw.config['retention.ms']),
  SHUTDOWN_DRAIN_MS: positiveInt(10_000),
});

export type IngressConfig = z.infer<typeof ingressEnv>;

export function readConfig(env: NodeJS.ProcessEnv = process.env): IngressConfig {
  const config = loadConfig(ingressEnv, env);
  const problems: string[] = [];
  // A bound below one body would refuse the largest webhook forever instead of asking for a retry.
  if (config.INGRESS_MAX_INFLIGHT_BYTES < config.MAX_BODY_BYTES) {
    problems.push(
      `INGRESS_MAX_INFLIGHT_BYTES (${config.INGRESS_MAX_INFLIGHT_BYTES}) must be at least MAX_BODY_BYTES (${config.MAX_BODY_BYTES})`,
    );
  }
  // Node refuses a request timeout shorter than the headers timeout.
  if (config.HTTP_REQUEST_TIMEOUT_MS < config.HTTP_HEADERS_TIMEOUT_MS) {
    problems.push(
      `HTTP_REQUEST_TIMEOUT_MS (${config.HTTP_REQUEST_TIMEOUT_MS}) must be at least HTTP_HEADERS_TIMEOUT_MS (${config.HTTP_HEADERS_TIMEOUT_MS})`,
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}
