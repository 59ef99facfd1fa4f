import { resolve } from 'node:path';

/** Where the infrastructure under test is; the global setup puts these into the environment of every worker. */
export interface InfraEndpoints {
  kafkaBrokers: string[];
  schemaRegistryUrl: string;
  redisUrl: string;
}

export const INFRA_VARIABLES = ['KAFKA_BROKERS', 'SCHEMA_REGISTRY_URL', 'REDIS_URL'] as const;

/** The endpoints given by the environment, or undefined when any of the three is missing. */
export function endpointsFromEnv(env: NodeJS.ProcessEnv = process.env): InfraEndpoints | undefined {
  const { KAFKA_BROKERS, SCHEMA_REGISTRY_URL, REDIS_URL } = env;
  if (!KAFKA_BROKERS || !SCHEMA_REGISTRY_URL || !REDIS_URL) return undefined;
  return {
    kafkaBrokers: KAFKA_BROKERS.split(',').map((b) => b.trim()),
    schemaRegistryUrl: SCHEMA_REGISTRY_URL,
    redisUrl: REDIS_URL,
  };
}

/** The endpoints inside a test worker; fails loudly when the global setup did not run. */
export function testEndpoints(): InfraEndpoints {
  const endpoints = endpointsFromEnv();
  if (!endpoints)
    throw new Error('integration infrastructure is not set up: run the tests through the jest config');
  return endpoints;
}

export function exportEndpoints(endpoints: InfraEndpoints, env: NodeJS.ProcessEnv = process.env): void {
  env.KAFKA_BROKERS = endpoints.kafkaBrokers.join(',');
  env.SCHEMA_REGISTRY_URL = endpoints.schemaRegistryUrl;
  env.REDIS_URL = endpoints.redisUrl;
}

/** Where the repository is, for the local stack script. */
export function repoRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.AMPFLOW_REPO_ROOT ?? resolve(__dirname, '../../..');
}

/** `AMPFLOW_TEST_INFRA=local|docker` forces a mode; `AMPFLOW_KEEP_STACK=1` leaves a started local stack up. */
export function infraPreferences(env: NodeJS.ProcessEnv = process.env) {
  return {
    forced: env.AMPFLOW_TEST_INFRA as 'local' | 'docker' | undefined,
    keepStack: env.AMPFLOW_KEEP_STACK === '1' || env.AMPFLOW_KEEP_STACK === 'true',
  };
}
