import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRedisClient } from '@ampflow/runtime/redis';
import pino from 'pino';
import { Webhook } from 'svix';
import { Topics, type CanonicalTopic } from '@ampflow/contracts';
import {
  createAvroCodec,
  createRegistryClient,
  createReliableProducer,
  ensureTopics,
  type ReliableProducer,
} from '@ampflow/kafka';
import { createMetricsRegistry } from '@ampflow/observability';
import { testEndpoints, testKafka, uniqueName } from '@ampflow/testing';
import { createNotifierApp, sourceTopics, type NotifierApp, type NotifierSettings } from '../src/app';
import { formatSecretsKey, generateSecretsKey } from '../src/endpoints/secret-box';

/** JSON as the tests read it: loosely typed on purpose, each test asserts the fields it cares about. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';

/** The key endpoint secrets are sealed with, new per test file: notifiers restarted within a file share it. */
export const SECRETS_KEY = generateSecretsKey('test');
/** {@link SECRETS_KEY} as NOTIFIER_SECRETS_KEY holds it, for notifier processes. */
export const SECRETS_KEY_TEXT = formatSecretsKey(SECRETS_KEY);

/** A notifier on its own topics (a unique prefix), consumer group and Redis namespace. */
export interface NotifierUnderTest {
  app: NotifierApp;
  settings: NotifierSettings;
  prefix: string;
  topics: ReturnType<typeof sourceTopics>;
  /** Calls the admin API; resolves to status and parsed JSON body. */
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }>;
  /** Produces canonical records (Avro, the contract's schemas) to a source topic of this notifier. */
  produce(topic: CanonicalTopic, values: unknown[], key?: (value: Json) => string): Promise<void>;
  fatalErrors: unknown[];
  stop(): Promise<void>;
}

export function fastSettings(prefix: string, overrides: Partial<NotifierSettings> = {}): NotifierSettings {
  return {
    httpPort: 0,
    httpHost: '127.0.0.1',
    schemaRegistryUrl: testEndpoints().schemaRegistryUrl,
    adminToken: ADMIN_TOKEN,
    secretsKeys: { current: SECRETS_KEY },
    shutdownDrainMs: 2_000,
    groupId: `${prefix}notifier`,
    topicPrefix: prefix,
    redisNamespace: `${prefix}notifier`,
    retryTopicPartitions: 2,
    retryScheduleMs: [0, 200, 400, 800],
    retryAfterMaxMs: 5_000,
    jitterRatio: 0,
    allowedNetworks: ['127.0.0.0/8'],
    allowHttp: true,
    requestTimeoutMs: 2_000,
    endpointConcurrency: 10,
    maxQueuePerEndpoint: 1_000,
    secretRotationOverlapMs: 60_000,
    disableAfterFailingMs: 24 * 3_600_000,
    circuitFailures: 1_000,
    circuitCooldownMs: 1_000,
    attemptRetentionMs: 3_600_000,
    sessionTimeoutMs: 6_000,
    ...overrides,
  };
}

export async function startNotifier(
  overrides: Partial<NotifierSettings> = {},
  options: { prefix?: string; redisUrl?: string } = {},
): Promise<NotifierUnderTest> {
  const prefix = options.prefix ?? `${uniqueName('nt')}.`;
  const settings = fastSettings(prefix, overrides);
  const kafka = testKafka();
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const fatalErrors: unknown[] = [];
  const redis = createRedisClient(options.redisUrl ?? testEndpoints().redisUrl, {
    lazyConnect: true,
    maxRetriesPerRequest: 3,
  });
  const app = createNotifierApp({
    settings,
    kafka,
    redis,
    logger,
    registry: createMetricsRegistry('notifier'),
    onFatal: (error) => fatalErrors.push(error),
  });
  const topics = sourceTopics(prefix);
  await ensureTopics(
    kafka,
    Object.values(topics).map((topic) => ({ topic, numPartitions: 3 })),
  );
  await app.start();
  const producer: ReliableProducer = createReliableProducer(kafka, { logger });
  await producer.connect();
  const codec = createAvroCodec({ client: createRegistryClient(settings.schemaRegistryUrl), logger });
  const registered = new Set<string>();
  const topicOf: Record<string, string> = {
    [Topics.vehicleTelemetry]: topics.telemetry,
    [Topics.chargingSessions]: topics.sessions,
    [Topics.commandResults]: topics.commands,
    [Topics.deviceLinks]: topics.deviceLinks,
    [Topics.vehicleErrors]: topics.errors,
  };
  return {
    app,
    settings,
    prefix,
    topics,
    fatalErrors,
    async admin(method, path, body) {
      const response = await fetch(`http://127.0.0.1:${app.port()}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${ADMIN_TOKEN}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      return { status: response.status, body: text ? JSON.parse(text) : null };
    },
    async produce(schemaOf, values, key) {
      const topic = topicOf[schemaOf]!;
      if (!registered.has(topic)) {
        await codec.register(topic, schemaOf);
        registered.add(topic);
      }
      await producer.send(
        topic,
        values.map((value: Json) => ({
          key: key ? key(value) : (value.vehicleId ?? value.userId ?? value.targetId ?? null),
          value: codec.encode(topic, value),
        })),
      );
    },
    async stop() {
      await producer.disconnect();
      await app.stop();
    },
  };
}

/** One webhook a sink received, verified with svix's `Webhook.verify`. */
export interface ReceivedWebhook {
  id: string;
  type: string;
  body: Json;
  headers: Record<string, string>;
  receivedAt: number;
  /** The status the sink answered with, once the answer is sent (undefined while pending or when dropped). */
  status?: number;
}

export interface Sink {
  url: string;
  /** Verified webhooks, in arrival order (every request, including those answered with a failure). */
  received: ReceivedWebhook[];
  /** Requests whose signature did not verify. */
  unverified: number;
  /** TCP connections accepted so far (a refused destination must leave this at 0). */
  connections: number;
  /** Sets the secret to verify with (from the endpoint's creation). */
  setSecret(secret: string): void;
  close(): Promise<void>;
}

/**
 * A receiver on 127.0.0.1 that verifies each webhook with svix and answers with `respond`'s choice
 * (default 204). `respond` may delay (return a promise) to simulate a slow receiver.
 */
export async function startSink(
  respond: (hook: ReceivedWebhook, req: IncomingMessage, res: ServerResponse) => void | Promise<void> = (
    _h,
    _q,
    res,
  ) => {
    res.writeHead(204).end();
  },
): Promise<Sink> {
  let secret: string | undefined;
  const received: ReceivedWebhook[] = [];
  let unverified = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const headers = Object.fromEntries(
        Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : (v ?? '')]),
      );
      let body: Json;
      try {
        body = new Webhook(secret ?? 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw').verify(text, headers);
      } catch {
        unverified += 1;
        res.writeHead(400).end();
        return;
      }
      const hook: ReceivedWebhook = {
        id: headers['webhook-id']!,
        type: body.type,
        body,
        headers,
        receivedAt: Date.now(),
      };
      received.push(hook);
      res.once('finish', () => {
        hook.status = res.statusCode;
      });
      void Promise.resolve(respond(hook, req, res)).catch(() => res.destroy());
    });
  });
  let connections = 0;
  server.on('connection', () => {
    connections += 1;
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    received,
    get unverified() {
      return unverified;
    },
    get connections() {
      return connections;
    },
    setSecret(s) {
      secret = s;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Creates an endpoint for `sink` and gives the sink its secret. */
export async function registerSink(
  n: NotifierUnderTest,
  sink: Sink,
  fields: Record<string, unknown> = {},
): Promise<string> {
  const created = await n.admin('POST', '/v1/endpoints', { url: sink.url, ...fields });
  if (created.status !== 201)
    throw new Error(`endpoint not created: ${created.status} ${JSON.stringify(created.body)}`);
  sink.setSecret(created.body.secret);
  return created.body.id as string;
}

/** Ids of the webhooks a sink answered with a 2xx, in order (a repeat appears again). */
export function deliveredIds(sink: Sink): string[] {
  return sink.received.filter((h) => h.status !== undefined && h.status < 300).map((h) => h.id);
}

/** A producer of canonical records (Avro) onto `<prefix><topic>`, for a notifier not started by this harness. */
export interface SourceProducer {
  produce(topic: CanonicalTopic, values: unknown[], key?: (value: Json) => string): Promise<void>;
  stop(): Promise<void>;
}

export async function createSourceProducer(prefix: string): Promise<SourceProducer> {
  const kafka = testKafka();
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const topics = sourceTopics(prefix);
  await ensureTopics(
    kafka,
    Object.values(topics).map((topic) => ({ topic, numPartitions: 3 })),
  );
  const producer = createReliableProducer(kafka, { logger });
  await producer.connect();
  const codec = createAvroCodec({ client: createRegistryClient(testEndpoints().schemaRegistryUrl), logger });
  const registered = new Set<string>();
  return {
    async produce(schemaOf, values, key) {
      const topic = prefix + schemaOf;
      if (!registered.has(topic)) {
        await codec.register(topic, schemaOf);
        registered.add(topic);
      }
      await producer.send(
        topic,
        values.map((value: Json) => ({
          key: key ? key(value) : (value.vehicleId ?? value.userId ?? value.targetId ?? null),
          value: codec.encode(topic, value),
        })),
      );
    },
    stop: () => producer.disconnect(),
  };
}

/**
 * Notifiers and sinks for one test file: what a test starts is stopped after it (in reverse order), and a
 * notifier must not have reported a fatal error by then. Registers its own `afterEach`.
 */
export function managedNotifiers() {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  return {
    /** Runs after the current test, before what was registered earlier. */
    cleanups,
    async notifier(overrides: Partial<NotifierSettings> = {}): Promise<NotifierUnderTest> {
      const n = await startNotifier(overrides);
      cleanups.push(async () => {
        await n.stop();
        expect(n.fatalErrors).toEqual([]);
      });
      return n;
    },
    async sink(respond?: Parameters<typeof startSink>[0]): Promise<Sink> {
      const s = await startSink(respond);
      cleanups.push(() => s.close());
      return s;
    },
  };
}
