import { z } from 'zod';
import { parseRedisUrl } from './redis-url';

export { parseRedisUrl, type RedisTarget } from './redis-url';

/** Raised when the environment does not satisfy a service's schema; lists every problem at once. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Parses `env` once against `schema`, whose keys are variable names. Empty strings count as unset, so
 * `FOO=` in an env file does not satisfy a required variable. Messages name the variable, never its value.
 */
export function loadConfig<S extends z.ZodObject>(schema: S, env: Env): z.infer<S> {
  const input: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') input[key] = value;
  }
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const name = issue.path.join('.') || '(environment)';
    return input[name] === undefined && issue.code === 'invalid_type'
      ? `${name} is required but not set`
      : `${name}: ${issue.message}`;
  });
  throw new ConfigError(problems);
}

/** A required secret: no default, ever. For secrets a provider issues, whose form is the provider's. */
export const secret = () => z.string().min(1);

/** Fewest characters of a secret ampflow issues itself: 32 hex digits are 128 random bits. */
export const ISSUED_SECRET_MIN_CHARS = 32;

/**
 * A required secret that ampflow issues (a token its own API accepts): no default, at least
 * {@link ISSUED_SECRET_MIN_CHARS} characters, so a guessable one is refused at start rather than in production.
 */
export const issuedSecret = () =>
  z
    .string()
    .min(
      ISSUED_SECRET_MIN_CHARS,
      `must be at least ${ISSUED_SECRET_MIN_CHARS} characters; generate one with \`openssl rand -hex 32\``,
    );

/** A TCP port number given as a string. */
export const port = (defaultPort: number) => z.coerce.number().int().min(0).max(65535).default(defaultPort);

/** A positive duration or size in the unit its variable name carries. */
export const positiveInt = (defaultValue: number) => z.coerce.number().int().positive().default(defaultValue);

/** `true`/`false`/`1`/`0`. */
export const flag = (defaultValue: boolean) =>
  z
    .enum(['true', 'false', '1', '0'])
    .default(defaultValue ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1');

/** Comma-separated list of `host:port`. */
export const brokerList = (defaultValue: string) =>
  z
    .string()
    .default(defaultValue)
    .transform((v) =>
      v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.string().regex(/^[^\s:]+:\d+$/, 'expected host:port')).min(1));

/** Variables every service shares (DESIGN.md, "Services, ports and configuration"). */
export const sharedEnv = {
  KAFKA_BROKERS: brokerList('localhost:9092'),
  /**
   * Put in front of every topic name a service reads or writes (default none): a separate set of topics on the
   * same cluster, for benchmarks and process tests, never mixed with the platform's own.
   */
  KAFKA_TOPIC_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9._-]*$/, 'expected letters, digits, ".", "_" or "-"')
    .default(''),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
};

/** Health bounds of services that produce to Kafka (see docs/guarantees.md). */
export const workHealthEnv = {
  /** Not ready once records waited this long for Kafka, or a chunk kept failing this long (30 s). */
  NOT_READY_AFTER_MS: positiveInt(30_000),
  /** Exit 1 (for the supervisor to restart) once stuck this long (5 min). */
  STUCK_EXIT_MS: positiveInt(5 * 60_000),
};

export const registryEnv = {
  SCHEMA_REGISTRY_URL: z.url(),
};

/**
 * Redis: one server (`redis://host:port[/db]`) or a Redis Cluster (`redis+cluster://host:port,host:port`, or
 * `redis://` with several nodes); the forms are in {@link parseRedisUrl} and docs/configuration.md.
 */
export const redisEnv = {
  REDIS_URL: z
    .string()
    .superRefine((value, ctx) => {
      try {
        parseRedisUrl(value);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
      }
    })
    .default('redis://localhost:6379'),
};

export { z };
