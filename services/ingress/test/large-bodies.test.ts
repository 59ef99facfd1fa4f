import pino from 'pino';
import { createMetricsRegistry } from '@ampflow/observability';
import {
  collectRecords,
  fixtureJson,
  svixHeaders,
  testEndpoints,
  testKafka,
  uniqueName,
} from '@ampflow/testing';
import { createIngressApp } from '../src/app';
import { createRedisSeenStore } from '../src/seen-store';

/**
 * Issue 8, fault 1: 300 concurrent signed Telematica webhooks of 250 KB each (under the 256 KiB body limit)
 * used to be merged into produce requests larger than the broker accepts; some were answered 200 and never
 * stored. Every 200 must be on the raw topic, and a valid webhook under the limit must be stored.
 */
jest.setTimeout(180_000);

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

it('stores every one of 300 concurrent 250 KB webhooks it acknowledges, and acknowledges them all', async () => {
  const kafka = testKafka();
  const topics = { smartcar: uniqueName('large-smartcar'), telematica: uniqueName('large-telematica') };
  const app = createIngressApp({
    settings: {
      httpPort: 0,
      httpHost: '127.0.0.1',
      smartcarManagementToken: 'large-bodies-amt',
      telematicaWebhookSecrets: [SECRET],
      maxBodyBytes: 256 * 1024,
      kafkaPublishTimeoutMs: 60_000,
      // Reading 75 MB on a loaded test machine takes longer than the 5 s default; this test is about storage.
      requestDeadlineMs: 60_000,
      rawTopicPartitions: 3,
      shutdownDrainMs: 10_000,
      kafkaProbeIntervalMs: 500,
      topics,
    },
    kafka,
    seenStore: createRedisSeenStore({
      url: testEndpoints().redisUrl,
      ttlSeconds: 600,
      namespace: uniqueName('seen-large'),
    }),
    logger: pino({ level: 'silent' }),
    registry: createMetricsRegistry('ingress', { defaultMetrics: false }),
    onFatal: (error) => {
      throw error;
    },
  });
  await app.start();
  const collector = await collectRecords(kafka, [topics.telematica]);
  try {
    const base = fixtureJson('telematica/vehicle-soc.json');
    const url = `http://127.0.0.1:${app.port()}/webhooks/telematica`;
    const ids = Array.from({ length: 300 }, (_, i) => `msg_large_${i}_${uniqueName('x')}`);
    const answers = await Promise.all(
      ids.map(async (id, i) => {
        const body = JSON.stringify({ ...base, padding: `${i}:`.padEnd(250 * 1024 - 600, 'p') });
        const res = await fetch(url, { method: 'POST', body, headers: svixHeaders(body, SECRET, { id }) });
        await res.text();
        return { id, status: res.status };
      }),
    );
    const acknowledged = answers.filter((a) => a.status === 200).map((a) => a.id);
    const statuses = answers.reduce<Record<number, number>>(
      (acc, a) => ({ ...acc, [a.status]: (acc[a.status] ?? 0) + 1 }),
      {},
    );
    expect(statuses).toEqual({ 200: 300 });

    await collector.waitFor(acknowledged.length, 60_000).catch(() => undefined);
    const stored = new Set(collector.records.map((r) => r.headers['event-id']));
    const lost = acknowledged.filter((id) => !stored.has(id));
    expect({ acknowledged: acknowledged.length, lost }).toEqual({ acknowledged: 300, lost: [] });

    // The ingress still takes small webhooks afterwards.
    const small = JSON.stringify(base);
    const res = await fetch(url, { method: 'POST', body: small, headers: svixHeaders(small, SECRET) });
    expect(res.status).toBe(200);
  } finally {
    await collector.stop();
    await app.stop();
  }
});
