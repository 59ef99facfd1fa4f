import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Topics } from '@ampflow/contracts';
import { eventually, repoRoot, testEndpoints, uniqueName } from '@ampflow/testing';
import { telemetry } from './fixtures';
import {
  ADMIN_TOKEN,
  SECRETS_KEY_TEXT,
  createSourceProducer,
  deliveredIds,
  startSink,
  type Json,
} from './harness';

/**
 * Issue 10, Tests: SIGKILL of the notifier in the middle of retries loses nothing. The BUILT notifier runs as a
 * child process (as `node` runs it in production); every message fails its first attempt, the process is
 * killed while most messages wait in the retry tiers, and a new process (same group, same prefix) delivers
 * every one. Duplicates (at-least-once) are counted and reported, not forbidden.
 */
jest.setTimeout(240_000);

const N = 200;
const MAIN = join(repoRoot(), 'services', 'notifier', 'dist', 'main.js');

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

interface Child {
  proc: ChildProcess;
  port: number;
  output(): string;
}

async function startChild(prefix: string, groupId: string, namespace: string): Promise<Child> {
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
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let output = '';
  proc.stderr!.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-4_000);
  });
  return { proc, port, output: () => output };
}

async function admin(child: Child, method: string, path: string, body?: unknown) {
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

async function waitReady(child: Child): Promise<void> {
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

it('loses no message when the notifier is SIGKILLed in the middle of retries', async () => {
  expect(existsSync(MAIN)).toBe(true); // built with `npm run build`
  const prefix = `${uniqueName('ntkill')}.`;
  const groupId = uniqueName('ntkill-group');
  const namespace = `${prefix}notifier`;
  const attempted = new Set<string>();
  // Fails the first attempt of every message; later attempts (retries, re-deliveries) succeed.
  const sink = await startSink((hook, _q, res) => {
    const first = !attempted.has(hook.id);
    attempted.add(hook.id);
    res.writeHead(first ? 500 : 204).end();
  });
  const source = await createSourceProducer(prefix);
  const children: Child[] = [];
  try {
    children.push(await startChild(prefix, groupId, namespace));
    await waitReady(children[0]!);
    const created = await admin(children[0]!, 'POST', '/v1/endpoints', {
      url: sink.url,
      eventTypes: ['vehicle.telemetry'],
    });
    expect(created.status).toBe(201);
    sink.setSecret(created.body.secret);

    const vehicles = Array.from({ length: 10 }, () => `telematica:${uniqueName('v')}`);
    await source.produce(
      Topics.vehicleTelemetry,
      Array.from({ length: N }, (_, i) => telemetry(vehicles[i % vehicles.length]!, i)),
    );
    const distinctDelivered = () => new Set(deliveredIds(sink)).size;
    await eventually(() => distinctDelivered() >= 40, 'some retries delivered', 60_000);
    children[0]!.proc.kill('SIGKILL');
    const deliveredAtKill = distinctDelivered();
    const attemptedAtKill = attempted.size;

    children.push(await startChild(prefix, groupId, namespace));
    await waitReady(children[1]!);
    await eventually(
      () => attempted.size >= N && distinctDelivered() >= N,
      'every message delivered after the SIGKILL',
      120_000,
      200,
    ).catch(() => undefined);
    const delivered = deliveredIds(sink);
    const unique = new Set(delivered);
    const missing = [...attempted].filter((id) => !unique.has(id));
    process.stderr.write(
      `[notifier process-kill] ${N} events in, ${attempted.size} message ids seen, ${unique.size} delivered ` +
        `with a 2xx (${delivered.length - unique.size} duplicate 2xx deliveries); at the SIGKILL ` +
        `${deliveredAtKill} were delivered and ${attemptedAtKill} attempted\n`,
    );
    expect(deliveredAtKill).toBeLessThan(N);
    expect({ ids: attempted.size, missing, unverified: sink.unverified }).toEqual({
      ids: N,
      missing: [],
      unverified: 0,
    });
  } finally {
    for (const child of children) child.proc.kill('SIGKILL');
    await source.stop();
    await sink.close();
  }
});
