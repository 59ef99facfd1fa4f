import { execFile, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { endpointsFromEnv, infraPreferences, repoRoot, type InfraEndpoints } from './env';

const execFileAsync = promisify(execFile);

export type InfraMode = 'env' | 'testcontainers' | 'local';

export interface ProvisionedInfra {
  mode: InfraMode;
  endpoints: InfraEndpoints;
  /** Stops what this provisioning started (nothing for `env`, or for a local stack that was already up). */
  release(): Promise<void>;
}

/** True when a Docker engine answers (not merely a `docker` client on the PATH). */
export async function dockerEngineReachable(): Promise<boolean> {
  try {
    await execFileAsync('docker', ['info', '--format', '{{.ServerVersion}}'], { timeout: 5_000 });
    return true;
  } catch {
    return false;
  }
}

function portAnswers(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host, timeout: 1_000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

function runStackScript(command: 'up' | 'down'): Promise<void> {
  const script = join(repoRoot(), 'deploy/local/stack.sh');
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script, command], { stdio: ['ignore', 'inherit', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`deploy/local/stack.sh ${command} exited with ${code}`)),
    );
  });
}

/** Kafka (KRaft), Apicurio Registry and Redis as containers; only used when a Docker engine is reachable. */
async function startContainers(): Promise<ProvisionedInfra> {
  const { GenericContainer, Network, Wait } = await import('testcontainers');
  const { KafkaContainer } = await import('@testcontainers/kafka');
  const { RedisContainer } = await import('@testcontainers/redis');
  const network = await new Network().start();
  const [kafka, registry, redis] = await Promise.all([
    new KafkaContainer('confluentinc/cp-kafka:7.9.0').withKraft().withNetwork(network).start(),
    new GenericContainer('apicurio/apicurio-registry:3.0.9')
      .withExposedPorts(8080)
      .withWaitStrategy(Wait.forHttp('/apis/ccompat/v7/subjects', 8080).forStatusCode(200))
      .withNetwork(network)
      .start(),
    new RedisContainer('redis:7.4-alpine').withNetwork(network).start(),
  ]);
  return {
    mode: 'testcontainers',
    endpoints: {
      kafkaBrokers: [`${kafka.getHost()}:${kafka.getMappedPort(9093)}`],
      schemaRegistryUrl: `http://${registry.getHost()}:${registry.getMappedPort(8080)}/apis/ccompat/v7`,
      redisUrl: redis.getConnectionUrl(),
    },
    async release() {
      await Promise.all([kafka.stop(), registry.stop(), redis.stop()]);
      await network.stop();
    },
  };
}

/** The Docker-free stack of deploy/local/stack.sh; stopped afterwards only if this call started it. */
async function startLocalStack(): Promise<ProvisionedInfra> {
  const wasUp = (await portAnswers(9092)) && (await portAnswers(8081));
  try {
    await runStackScript('up');
  } catch (err) {
    // Leave nothing half-started behind (stack.sh down stops only what it started).
    if (!wasUp) await runStackScript('down').catch(() => undefined);
    throw err;
  }
  const { keepStack } = infraPreferences();
  return {
    mode: 'local',
    endpoints: {
      kafkaBrokers: ['127.0.0.1:9092'],
      schemaRegistryUrl: 'http://127.0.0.1:8081/apis/ccompat/v7',
      redisUrl: 'redis://127.0.0.1:6379',
    },
    async release() {
      if (!wasUp && !keepStack) await runStackScript('down');
    },
  };
}

/**
 * Finds or starts the real infrastructure for integration tests, in this order: endpoints given by
 * `KAFKA_BROKERS`, `SCHEMA_REGISTRY_URL` and `REDIS_URL`; Testcontainers when a Docker engine answers;
 * otherwise the local stack. `AMPFLOW_TEST_INFRA=local|docker` skips the detection.
 */
export async function provisionInfrastructure(): Promise<ProvisionedInfra> {
  const given = endpointsFromEnv();
  if (given) return { mode: 'env', endpoints: given, release: async () => {} };
  const { forced } = infraPreferences();
  if (forced === 'docker' || (forced !== 'local' && (await dockerEngineReachable())))
    return startContainers();
  return startLocalStack();
}
