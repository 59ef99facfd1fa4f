import { issuedSecret, loadConfig, port, positiveInt, registryEnv, sharedEnv, z } from '@ampflow/config';

/** `name=url` pairs, comma-separated: each service's `/metrics` URL that the Pipeline view reads. */
const metricsTargets = (defaultValue: string) =>
  z
    .string()
    .default(defaultValue)
    .transform((text, ctx) => {
      const targets = text
        .split(',')
        .map((entry) => entry.trim())
        .filter(Boolean)
        .map((entry) => {
          const at = entry.indexOf('=');
          return { service: entry.slice(0, at), url: entry.slice(at + 1) };
        });
      const bad = targets.filter((t) => !t.service || !/^https?:\/\/\S+$/.test(t.url));
      if (bad.length > 0) {
        ctx.addIssue({ code: 'custom', message: 'expected name=http://host:port/metrics,...' });
        return z.NEVER;
      }
      return targets;
    });

/** Every variable the console reads; see `.env.example` for their meaning. */
export const consoleEnv = z.object({
  ...sharedEnv,
  ...registryEnv,
  HTTP_PORT: port(8088),
  HTTP_HOST: z.string().default('0.0.0.0'),
  /** The notifier whose admin API the console proxies (its `/v1`). */
  NOTIFIER_URL: z.url().default('http://127.0.0.1:8090'),
  /** The notifier's admin token: the operator signs in with it, the console calls the notifier with it. */
  NOTIFIER_ADMIN_TOKEN: issuedSecret(),
  /** Signs the session cookies and the portal links (HMAC-SHA256); changing it signs everyone out. */
  CONSOLE_SESSION_KEY: issuedSecret(),
  /** How long an operator session lasts (8 h). */
  CONSOLE_SESSION_TTL_MS: positiveInt(8 * 3_600_000),
  /** Longest a portal link may be valid for (30 days); the operator picks up to this when minting one. */
  CONSOLE_PORTAL_LINK_MAX_TTL_MS: positiveInt(30 * 24 * 3_600_000),
  /** Time the console waits for the notifier's answer before it answers 503. */
  NOTIFIER_TIMEOUT_MS: positiveInt(10_000),
  /** Each service's `/metrics`, for the Pipeline view. */
  CONSOLE_METRICS_TARGETS: metricsTargets(
    'ingress=http://127.0.0.1:8080/metrics,normalizer=http://127.0.0.1:9102/metrics,' +
      'session-aggregator=http://127.0.0.1:9103/metrics,notifier=http://127.0.0.1:8090/metrics',
  ),
  SHUTDOWN_DRAIN_MS: positiveInt(10_000),
});

export type ConsoleConfig = z.infer<typeof consoleEnv>;

export function readConfig(env: NodeJS.ProcessEnv): ConsoleConfig {
  return loadConfig(consoleEnv, env);
}
