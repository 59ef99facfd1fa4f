import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { Topics } from '@ampflow/contracts';
import {
  collectRecords,
  eventually,
  fixtureBytes,
  repoRoot,
  startFaultStack,
  svixHeaders,
  testEndpoints,
  uniqueName,
  type FaultStack,
  type RecordCollector,
} from '../src';

/**
 * The stuck-exit path with the real services under the real supervisor (scripts/supervise.mjs, what `npm start`
 * runs): a dedicated broker is paused with SIGSTOP while webhooks come in; past a short `STUCK_EXIT_MS` the
 * ingress (records waiting for an acknowledgement that never comes) stops and exits 1, the supervisor starts it
 * again, and once the broker goes on every webhook the "provider" sent (retrying each until it is answered 200)
 * comes out of the normalizer as its canonical record. Built services (`services/<name>/dist/main.js`).
 */
jest.setTimeout(240_000);

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
let stack: FaultStack;
let dir: string;

beforeAll(async () => {
  stack = await startFaultStack();
  dir = mkdtempSync(join(tmpdir(), 'ampflow-stuck-exit-'));
});

afterAll(async () => {
  await stack?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** The dedicated broker's process id, from the pid file stack.sh keeps. */
const brokerPid = () => Number(readFileSync(join(stack.stateDir, 'pids', 'kafka.pid'), 'utf8').trim());

function runSupervisor(spec: Record<string, unknown>, env: Record<string, string>) {
  const child = spawn(process.execPath, [join(repoRoot(), 'scripts/supervise.mjs'), JSON.stringify(spec)], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    exited,
    stderr: () => stderr,
    waitFor: (pattern: RegExp, timeoutMs = 60_000) =>
      eventually(() => pattern.test(stderr), `${pattern} in:\n${stderr}`, timeoutMs, 50),
  };
}

/** POSTs a signed Telematica webhook; resolves with the status, or 0 when the connection failed. */
function postWebhook(port: number, id: string): Promise<number> {
  const body = fixtureBytes('telematica/vehicle-soc.json');
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/webhooks/telematica',
        method: 'POST',
        headers: svixHeaders(body, SECRET, { id }),
        timeout: 10_000,
      },
      (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(0));
    req.end(body);
  });
}

/** What a provider does: re-sends a webhook until it is answered 200 (every 500 ms). */
async function deliver(port: number, id: string, statuses: number[]): Promise<void> {
  for (;;) {
    const status = await postWebhook(port, id);
    statuses.push(status);
    if (status === 200) return;
    await new Promise((r) => setTimeout(r, 500));
  }
}

describe('stuck services exit 1 and the supervisor restarts them, losing nothing', () => {
  let supervisor: ReturnType<typeof runSupervisor> | undefined;
  let collector: RecordCollector | undefined;
  let paused = false;

  afterEach(async () => {
    if (paused) process.kill(brokerPid(), 'SIGCONT');
    await collector?.stop();
    if (supervisor && supervisor.child.exitCode === null) {
      supervisor.child.kill('SIGTERM');
      await supervisor.exited;
    }
  });

  it('broker paused (SIGSTOP) past STUCK_EXIT_MS: the ingress exits 1, is restarted, and every webhook is normalized', async () => {
    const [ingressPort, normalizerPort] = [await freePort(), await freePort()];
    const prefix = `${uniqueName('stuck')}.`;
    const ingressLog = join(dir, 'ingress.log');
    const node = (name: string, port: number) => [
      'env',
      `HTTP_PORT=${port}`,
      process.execPath,
      join(repoRoot(), 'services', name, 'dist', 'main.js'),
    ];
    supervisor = runSupervisor(
      {
        services: [
          {
            name: 'ingress',
            command: node('ingress', ingressPort),
            log: ingressLog,
            readyUrl: `http://127.0.0.1:${ingressPort}/readyz`,
          },
          {
            name: 'normalizer',
            command: node('normalizer', normalizerPort),
            log: join(dir, 'normalizer.log'),
            readyUrl: `http://127.0.0.1:${normalizerPort}/readyz`,
          },
        ],
        restartInitialMs: 500,
        readyPollMs: 200,
        readyTimeoutMs: 120_000,
        readyMessage: 'all started',
      },
      {
        KAFKA_BROKERS: stack.kafkaBrokers.join(','),
        SCHEMA_REGISTRY_URL: stack.schemaRegistryUrl,
        REDIS_URL: testEndpoints().redisUrl,
        KAFKA_TOPIC_PREFIX: prefix,
        NORMALIZER_GROUP_ID: uniqueName('stuck-normalizer'),
        SMARTCAR_MANAGEMENT_TOKEN: 'stuck-exit-amt',
        TELEMATICA_WEBHOOK_SECRET: SECRET,
        HTTP_HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
        // The stuck exit after 3 s instead of 5 min; a request answers 503 after 1 s without an acknowledgement.
        STUCK_EXIT_MS: '3000',
        NOT_READY_AFTER_MS: '1000',
        KAFKA_PUBLISH_TIMEOUT_MS: '1000',
        SHUTDOWN_DRAIN_MS: '1000',
      },
    );
    await supervisor.waitFor(/all started/, 120_000);
    expect(supervisor.stderr()).toMatch(/ingress +ready/);
    expect(supervisor.stderr()).toMatch(/normalizer +ready/);

    const kafka = new Kafka({ brokers: stack.kafkaBrokers, logLevel: logLevel.NOTHING });
    collector = await collectRecords(kafka, [prefix + Topics.vehicleTelemetry]);
    const run = uniqueName('w');
    const statuses: number[] = [];
    const before = Array.from({ length: 10 }, (_, i) => `${run}-before-${i}`);
    await Promise.all(before.map((id) => deliver(ingressPort, id, statuses)));

    process.kill(brokerPid(), 'SIGSTOP');
    paused = true;
    const during = Array.from({ length: 10 }, (_, i) => `${run}-during-${i}`);
    const delivered = Promise.all(during.map((id) => deliver(ingressPort, id, statuses)));
    await supervisor.waitFor(/ingress exited with status 1; restarting/);
    const failure = readFileSync(ingressLog, 'utf8')
      .split('\n')
      .filter((line) => line.includes('"reason":"stuck"'));
    expect(failure.length).toBeGreaterThan(0);
    expect(failure[0]).toContain('producer_stalled');
    expect(statuses).toContain(503);

    process.kill(brokerPid(), 'SIGCONT');
    paused = false;
    await supervisor.waitFor(/ingress ready again after restart \d+/, 120_000);
    await delivered;

    const sent = [...before, ...during].map((id) => `telematica:${id}`);
    const out = () => collector!.records.map((r) => r.headers['event-id']!);
    await eventually(() => sent.every((id) => out().includes(id)), 'every webhook normalized', 60_000, 200);
    // Nothing else came out; a webhook whose 503 was a lost acknowledgement may come out twice, identical.
    expect(new Set(out())).toEqual(new Set(sent));
    const duplicates = out().length - sent.length;
    process.stdout.write(`stuck exit: ${sent.length} webhooks, ${duplicates} duplicates\n`);
    supervisor.child.kill('SIGTERM');
    expect(await supervisor.exited).toBe(0);
  });
});
