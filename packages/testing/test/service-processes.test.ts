import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { repoRoot, testEndpoints, uniqueName } from '../src';

/** Runs a built service (`services/<name>/dist/main.js`) as `node` would in production. */
function runService(name: string, env: Record<string, string>) {
  const child = spawn(process.execPath, [join(repoRoot(), 'services', name, 'dist', 'main.js')], {
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', HTTP_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      lines.push({ raw: line });
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, lines, exited, stderr: () => stderr };
}

async function waitForPort(
  lines: Record<string, unknown>[],
  child: ChildProcess,
  timeoutMs = 30_000,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const port = lines.find((l) => typeof l.port === 'number')?.port;
    if (typeof port === 'number') return port;
    if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}: ${JSON.stringify(lines)}`);
    if (Date.now() > deadline) throw new Error(`no port logged: ${JSON.stringify(lines)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('each service runs as a process: ready, observable, and stops cleanly on SIGTERM', () => {
  const infra = () => {
    const { kafkaBrokers, schemaRegistryUrl, redisUrl } = testEndpoints();
    return {
      KAFKA_BROKERS: kafkaBrokers.join(','),
      // Topics of their own: the platform's topics may hold other runs' (or benchmarks') records.
      KAFKA_TOPIC_PREFIX: `${uniqueName('process')}.`,
      SCHEMA_REGISTRY_URL: schemaRegistryUrl,
      REDIS_URL: redisUrl,
    };
  };
  const secrets: Record<string, Record<string, string>> = {
    ingress: {
      SMARTCAR_MANAGEMENT_TOKEN: 'process-test-amt',
      TELEMATICA_WEBHOOK_SECRET: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
    },
    // Own groups and keys: the contract topics may hold other runs' records, which must not leak into shared state.
    normalizer: { NORMALIZER_GROUP_ID: uniqueName('process-normalizer') },
    'session-aggregator': {
      AGGREGATOR_GROUP_ID: uniqueName('process-aggregator'),
      AGGREGATOR_REDIS_NAMESPACE: uniqueName('process-sessions'),
    },
    notifier: {
      NOTIFIER_ADMIN_TOKEN: `process-test-admin-${randomBytes(16).toString('hex')}`,
      NOTIFIER_SECRETS_KEY: `process-test:${randomBytes(32).toString('base64')}`,
    },
    console: {
      NOTIFIER_ADMIN_TOKEN: `process-test-admin-${randomBytes(16).toString('hex')}`,
      CONSOLE_SESSION_KEY: randomBytes(32).toString('hex'),
    },
  };

  it.each(Object.keys(secrets))('%s', async (name) => {
    const service = runService(name, { ...infra(), ...secrets[name] });
    try {
      const port = await waitForPort(service.lines, service.child);
      const base = `http://127.0.0.1:${port}`;
      expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ status: 'ok' });
      let ready = await fetch(`${base}/readyz`);
      for (let i = 0; i < 100 && ready.status !== 200; i++) {
        await new Promise((r) => setTimeout(r, 100));
        ready = await fetch(`${base}/readyz`);
      }
      expect(ready.status).toBe(200);
      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).toContain(`process_cpu_user_seconds_total{service="${name}"}`);

      service.child.kill('SIGTERM');
      expect(await service.exited).toBe(0);
      expect(service.lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['stopping', 'stopped']));
      expect(service.lines.every((l) => l.service === name)).toBe(true);
    } finally {
      service.child.kill('SIGKILL');
    }
  });

  it.each([
    ['ingress', ['SMARTCAR_MANAGEMENT_TOKEN', 'TELEMATICA_WEBHOOK_SECRET']],
    ['notifier', ['NOTIFIER_ADMIN_TOKEN', 'NOTIFIER_SECRETS_KEY']],
    ['console', ['NOTIFIER_ADMIN_TOKEN', 'CONSOLE_SESSION_KEY']],
  ])('%s refuses to start without its secrets, naming each', async (name, variables) => {
    const service = runService(name, infra());
    expect(await service.exited).toBe(1);
    for (const variable of variables)
      expect(service.stderr()).toContain(`${variable} is required but not set`);
  });
});
