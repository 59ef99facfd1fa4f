import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { repoRoot, testEndpoints, uniqueName } from '@ampflow/testing';

/**
 * The platform the browser tests drive: ingress, normalizer, session aggregator and notifier as child processes
 * (their built `dist/main.js`, as `npm start` runs them) on topics, consumer groups and Redis namespaces of their
 * own, against the shared Kafka, registry and Redis. Child processes, not imports: a service's tests never import
 * another service (the lint rule of eslint.config.mjs).
 */
export interface ServiceProcess {
  name: string;
  url: string;
  stop(): Promise<void>;
}

export async function startServiceProcess(
  name: string,
  env: Record<string, string>,
): Promise<ServiceProcess> {
  const child: ChildProcess = spawn(
    process.execPath,
    [join(repoRoot(), 'services', name, 'dist', 'main.js')],
    {
      env: {
        PATH: process.env.PATH ?? '',
        LOG_LEVEL: 'info',
        HTTP_PORT: '0',
        HTTP_HOST: '127.0.0.1',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let port: number | undefined;
  const lines: string[] = [];
  child.stderr!.on('data', (chunk: Buffer) => lines.push(chunk.toString()));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (lines.length < 200) lines.push(line);
    try {
      const parsed = JSON.parse(line) as { port?: unknown };
      if (typeof parsed.port === 'number' && port === undefined) port = parsed.port;
    } catch {
      // not a log line
    }
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  const deadline = Date.now() + 60_000;
  try {
    while (port === undefined) {
      if (child.exitCode !== null)
        throw new Error(`${name} exited with ${child.exitCode}:\n${lines.join('\n')}`);
      if (Date.now() > deadline) throw new Error(`${name} logged no port:\n${lines.join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const url = `http://127.0.0.1:${port}`;
    while (
      (await fetch(`${url}/readyz`).then(
        (r) => r.status,
        () => 0,
      )) !== 200
    ) {
      if (Date.now() > deadline) throw new Error(`${name} never became ready:\n${lines.join('\n')}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    return { name, url, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

export interface Platform {
  prefix: string;
  adminToken: string;
  secrets: { smartcarManagementToken: string; telematicaWebhookSecret: string };
  ingress: ServiceProcess;
  notifier: ServiceProcess;
  stop(): Promise<void>;
}

/**
 * Starts the four services. The notifier tries a delivery twice (at once and 1 s later) before it dead-letters
 * it, so a failing receiver produces dead letters within seconds; loopback http endpoints are allowed.
 */
export async function startPlatform(): Promise<Platform> {
  const { kafkaBrokers, schemaRegistryUrl, redisUrl } = testEndpoints();
  const prefix = `${uniqueName('console')}.`;
  const adminToken = `console-test-admin-${randomBytes(16).toString('hex')}`;
  const secrets = {
    smartcarManagementToken: 'console-test-amt',
    telematicaWebhookSecret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  };
  const infra = {
    KAFKA_BROKERS: kafkaBrokers.join(','),
    KAFKA_TOPIC_PREFIX: prefix,
    SCHEMA_REGISTRY_URL: schemaRegistryUrl,
    REDIS_URL: redisUrl,
  };
  const started: ServiceProcess[] = [];
  const stop = async () => {
    for (const service of started.reverse()) await service.stop();
  };
  try {
    const start = async (name: string, env: Record<string, string>) => {
      const service = await startServiceProcess(name, { ...infra, ...env });
      started.push(service);
      return service;
    };
    const notifier = await start('notifier', {
      NOTIFIER_ADMIN_TOKEN: adminToken,
      NOTIFIER_SECRETS_KEY: `console-test:${randomBytes(32).toString('base64')}`,
      NOTIFIER_GROUP_ID: `${prefix}notifier`,
      NOTIFIER_REDIS_NAMESPACE: `${prefix}notifier`,
      NOTIFIER_ALLOW_HTTP: 'true',
      NOTIFIER_ALLOWED_NETWORKS: '127.0.0.0/8',
      NOTIFIER_RETRY_SCHEDULE: '0,1s',
      NOTIFIER_REQUEST_TIMEOUT_MS: '2000',
      NOTIFIER_CIRCUIT_FAILURES: '1000',
      NOTIFIER_CIRCUIT_COOLDOWN_MS: '1000',
      NOTIFIER_RETRY_TOPIC_PARTITIONS: '2',
    });
    await start('normalizer', { NORMALIZER_GROUP_ID: `${prefix}normalizer` });
    await start('session-aggregator', {
      AGGREGATOR_GROUP_ID: `${prefix}aggregator`,
      AGGREGATOR_REDIS_NAMESPACE: `${prefix}sessions`,
    });
    const ingress = await start('ingress', {
      SMARTCAR_MANAGEMENT_TOKEN: secrets.smartcarManagementToken,
      TELEMATICA_WEBHOOK_SECRET: secrets.telematicaWebhookSecret,
      RAW_TOPIC_PARTITIONS: '2',
    });
    return { prefix, adminToken, secrets, ingress, notifier, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** A customer's webhook receiver on loopback: records what it gets, answers 204 or, while failing, 500. */
export interface Receiver {
  url: string;
  received: { headers: IncomingHttpHeaders; body: string }[];
  setFailing(failing: boolean): void;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  let failing = false;
  const received: Receiver['received'] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      if (failing) res.writeHead(500, { 'content-type': 'text/plain' }).end('receiver is down for the test');
      else res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    received,
    setFailing: (value) => (failing = value),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
