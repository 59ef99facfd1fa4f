import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { Kafka, logLevel } from 'kafkajs';
import {
  Topics,
  canonicalSchema,
  emptyTelemetry,
  type ChargingSession,
  type VehicleTelemetry,
} from '@ampflow/contracts';
import {
  collectRecords,
  eventually,
  fixtureBytes,
  repoRoot,
  startFaultStack,
  startRedisProcess,
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
 * comes out of the normalizer as its canonical record. And a consumer whose chunk keeps failing (the session
 * aggregator with its Redis killed) past `STUCK_EXIT_MS`: it exits 1, is restarted until Redis is back (empty), refills
 * it from its changelog and produces exactly the sessions of a clean run. Built services (`dist/main.js`).
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

/** A built service as `node` runs it, with its own HTTP port (the supervisor gives every service one env). */
const node = (name: string, port: number) => [
  'env',
  `HTTP_PORT=${port}`,
  process.execPath,
  join(repoRoot(), 'services', name, 'dist', 'main.js'),
];

/** Stuck after 3 s instead of 5 min (records unacknowledged, or a chunk failing); a stop drains for 1 s. */
const FAST_STUCK_EXIT = {
  LOG_LEVEL: 'info',
  STUCK_EXIT_MS: '3000',
  NOT_READY_AFTER_MS: '1000',
  SHUTDOWN_DRAIN_MS: '1000',
};

/** The JSON log lines of a service's log file that say it failed as stuck. */
const stuckLines = (log: string) =>
  readFileSync(log, 'utf8')
    .split('\n')
    .filter((line) => line.includes('"reason":"stuck"'));

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
        // A request answers 503 after 1 s without an acknowledgement.
        KAFKA_PUBLISH_TIMEOUT_MS: '1000',
        ...FAST_STUCK_EXIT,
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
    const failure = stuckLines(ingressLog);
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

  it('a chunk failing (Redis killed) past STUCK_EXIT_MS: the aggregator exits 1, is restarted, and ends every session once', async () => {
    const redis = await startRedisProcess();
    try {
      const port = await freePort();
      const prefix = `${uniqueName('stuck-agg')}.`;
      const telemetryTopic = prefix + Topics.vehicleTelemetry;
      const log = join(dir, 'aggregator.log');
      supervisor = runSupervisor(
        {
          services: [
            {
              name: 'session-aggregator',
              command: node('session-aggregator', port),
              log,
              readyUrl: `http://127.0.0.1:${port}/readyz`,
            },
          ],
          restartInitialMs: 500,
          restartMaxMs: 2_000,
          readyPollMs: 200,
          readyTimeoutMs: 120_000,
        },
        {
          KAFKA_BROKERS: stack.kafkaBrokers.join(','),
          SCHEMA_REGISTRY_URL: stack.schemaRegistryUrl,
          REDIS_URL: redis.url,
          KAFKA_TOPIC_PREFIX: prefix,
          AGGREGATOR_GROUP_ID: uniqueName('stuck-aggregator'),
          AGGREGATOR_REDIS_NAMESPACE: uniqueName('stuck-sessions'),
          SESSIONS_TOPIC_PARTITIONS: '2',
          SESSION_SWEEP_INTERVAL_MS: '3600000',
          ...FAST_STUCK_EXIT,
        },
      );
      await supervisor.waitFor(/session-aggregator +ready/, 120_000);

      const kafka = new Kafka({ brokers: stack.kafkaBrokers, logLevel: logLevel.NOTHING });
      const registry = new SchemaRegistry({ host: stack.schemaRegistryUrl });
      const { id: schemaId } = await registry.register(
        { type: SchemaType.AVRO, schema: canonicalSchema(Topics.vehicleTelemetry) },
        { subject: `${telemetryTopic}-value` },
      );
      collector = await collectRecords(kafka, [prefix + Topics.chargingSessions]);
      const producer = kafka.producer({ idempotent: true });
      await producer.connect();
      const run = uniqueName('v');
      const vehicles = Array.from({ length: 6 }, (_, i) => `smartcar:${run}-${i}`);
      const day = Date.parse('2025-08-05T00:00:00.000Z');
      const reading = (vehicleId: string, hour: number, isCharging: boolean): VehicleTelemetry => ({
        ...emptyTelemetry({
          eventId: `smartcar:${vehicleId}-${hour}`,
          provider: 'smartcar',
          vehicleId,
          providerVehicleId: vehicleId.split(':')[1]!,
          userId: null,
          occurredAt: day + hour * 3_600_000,
          receivedAt: day + hour * 3_600_000 + 1_000,
          sourceEventType: 'VEHICLE_STATE',
        }),
        isCharging,
        isPluggedIn: true,
        stateOfChargePercent: isCharging ? 40 : 80,
      });
      const send = async (hour: number, isCharging: boolean) =>
        producer.send({
          topic: telemetryTopic,
          acks: -1,
          messages: await Promise.all(
            vehicles.map(async (v) => ({
              key: v,
              value: await registry.encode(schemaId, reading(v, hour, isCharging)),
            })),
          ),
        });
      const changes = async () =>
        Promise.all(
          collector!.records.map(async (r) => (await registry.decode(r.value!)) as ChargingSession),
        );

      await send(8, true);
      await eventually(
        async () => (await changes()).length >= vehicles.length,
        'every session started',
        60_000,
        200,
      );

      await redis.kill();
      await send(9, false);
      await supervisor.waitFor(/session-aggregator exited with status 1; restarting/);
      expect(stuckLines(log).length).toBeGreaterThan(0);
      expect(stuckLines(log)[0]).toContain('redis_unavailable');

      await redis.restart();
      await supervisor.waitFor(/session-aggregator ready again after restart \d+/, 120_000);
      const byIdentity = async () => {
        const seen = new Map<string, string>();
        for (const c of await changes())
          seen.set(`${c.sessionId}:${c.version}`, `${c.vehicleId} ${c.change}`);
        return seen;
      };
      await eventually(
        async () => (await byIdentity()).size >= 2 * vehicles.length,
        'every session ended',
        60_000,
        200,
      );
      // Each vehicle: one session, STARTED then ENDED; a change produced twice is identical (same identity).
      expect([...(await byIdentity()).values()].sort()).toEqual(
        vehicles.flatMap((v) => [`${v} ENDED`, `${v} STARTED`]).sort(),
      );
      const identical = new Map<string, string>();
      for (const c of await changes()) {
        const key = `${c.sessionId}:${c.version}`;
        const body = JSON.stringify(c);
        expect(identical.get(key) ?? body).toBe(body);
        identical.set(key, body);
      }
      await producer.disconnect();
      supervisor.child.kill('SIGTERM');
      expect(await supervisor.exited).toBe(0);
    } finally {
      await redis.stop();
    }
  });
});
