import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { eventually, repoRoot, testEndpoints } from '@ampflow/testing';
import { ADMIN_TOKEN, SECRETS_KEY_TEXT, type Json } from './harness';

/**
 * The BUILT notifier as a child process (as `node` runs it in production), for tests that SIGKILL it. Its
 * variables are those of `startChild` plus `env`.
 */
export const MAIN = join(repoRoot(), 'services', 'notifier', 'dist', 'main.js');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface Child {
  proc: ChildProcess;
  port: number;
  output(): string;
}

export async function startChild(
  prefix: string,
  groupId: string,
  namespace: string,
  env: Record<string, string> = {},
): Promise<Child> {
  const { kafkaBrokers, schemaRegistryUrl, redisUrl } = testEndpoints();
  const port = await freePort();
  const proc = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH ?? '',
      LOG_LEVEL: 'warn',
      HTTP_PORT: String(port),
      KAFKA_BROKERS: kafkaBrokers.join(','),
      SCHEMA_REGISTRY_URL: schemaRegistryUrl,
      REDIS_URL: redisUrl,
      KAFKA_TOPIC_PREFIX: prefix,
      NOTIFIER_ADMIN_TOKEN: ADMIN_TOKEN,
      NOTIFIER_SECRETS_KEY: SECRETS_KEY_TEXT,
      NOTIFIER_ALLOW_HTTP: 'true',
      NOTIFIER_ALLOWED_NETWORKS: '127.0.0.0/8',
      NOTIFIER_RETRY_SCHEDULE: '0,1s,2s,2s',
      NOTIFIER_RETRY_TOPIC_PARTITIONS: '2',
      // Every first attempt fails: a circuit would pause the endpoint for its cooldown and slow the test down.
      NOTIFIER_CIRCUIT_FAILURES: '100000',
      NOTIFIER_GROUP_ID: groupId,
      NOTIFIER_REDIS_NAMESPACE: namespace,
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let output = '';
  proc.stderr!.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-4_000);
  });
  return { proc, port, output: () => output };
}

export async function admin(child: Child, method: string, path: string, body?: unknown) {
  const response = await fetch(`http://127.0.0.1:${child.port}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${ADMIN_TOKEN}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : null) as Json };
}

export async function waitReady(child: Child): Promise<void> {
  await eventually(
    async () => {
      if (child.proc.exitCode !== null) throw new Error(`the notifier exited: ${child.output()}`);
      try {
        return (await admin(child, 'GET', '/v1/endpoints')).status === 200;
      } catch {
        return false;
      }
    },
    'the notifier process to serve its admin API',
    60_000,
    200,
  );
}
