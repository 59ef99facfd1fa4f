import type { Kafka } from 'kafkajs';
import pino from 'pino';
import { createMetricsRegistry } from '@ampflow/observability';
import { smartcarHeaders, svixHeaders, testEndpoints, testKafka, uniqueName } from '@ampflow/testing';
import { createIngressApp, type IngressApp, type IngressSettings } from '../src/app';
import { createRedisSeenStore } from '../src/seen-store';

export const AMT = 'integration-management-token';
export const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

export interface IngressHarness {
  app: IngressApp;
  /** The seen store's key prefix. */
  seenNamespace: string;
  url: string;
  port: number;
  topics: { smartcar: string; telematica: string };
  metrics: () => Promise<string>;
}

/** Starts an ingress on a free loopback port with its own raw topics and seen-store namespace. */
export async function startIngress(
  overrides: Partial<IngressSettings> = {},
  kafka: Kafka = testKafka(),
  redisUrl: string = testEndpoints().redisUrl,
): Promise<IngressHarness> {
  const seenNamespace = uniqueName('seen');
  const topics = { smartcar: uniqueName('raw-smartcar'), telematica: uniqueName('raw-telematica') };
  const registry = createMetricsRegistry('ingress', { defaultMetrics: false });
  const app = createIngressApp({
    settings: {
      httpPort: 0,
      httpHost: '127.0.0.1',
      smartcarManagementToken: AMT,
      telematicaWebhookSecrets: [SECRET],
      maxBodyBytes: 256 * 1024,
      kafkaPublishTimeoutMs: 5_000,
      rawTopicPartitions: 3,
      shutdownDrainMs: 2_000,
      kafkaProbeIntervalMs: 200,
      topics,
      ...overrides,
    },
    kafka,
    seenStore: createRedisSeenStore({
      url: redisUrl,
      ttlSeconds: 600,
      namespace: seenNamespace,
    }),
    logger: pino({ level: 'silent' }),
    registry,
    onFatal: (error) => {
      throw error;
    },
  });
  await app.start();
  const port = app.port();
  return {
    app,
    seenNamespace,
    url: `http://127.0.0.1:${port}`,
    port,
    topics,
    metrics: () => registry.metrics(),
  };
}

export interface Answer {
  status: number;
  json: Record<string, unknown> | undefined;
  headers: Headers;
}

export async function post(
  url: string,
  body: Buffer | string,
  headers: Record<string, string>,
): Promise<Answer> {
  const res = await fetch(url, { method: 'POST', body: new Uint8Array(Buffer.from(body)), headers });
  const text = await res.text();
  return {
    status: res.status,
    json: text ? (JSON.parse(text) as Record<string, unknown>) : undefined,
    headers: res.headers,
  };
}

export const postSmartcar = (h: IngressHarness, body: Buffer | string) =>
  post(`${h.url}/webhooks/smartcar`, body, smartcarHeaders(body, AMT));
export const postTelematica = (h: IngressHarness, body: Buffer | string, id?: string) =>
  post(`${h.url}/webhooks/telematica`, body, svixHeaders(body, SECRET, { id }));
