import { getEventListeners } from 'node:events';
import pino from 'pino';
import { createMetricsRegistry } from '@ampflow/observability';
import { createDispatcher } from '../src/delivery/dispatcher';
import type { DurableWriter } from '../src/delivery/durable-writer';
import type { HttpSender } from '../src/delivery/http-sender';
import { retrySchedule } from '../src/delivery/retry-schedule';
import { tierFor } from '../src/delivery/retry-tiers';
import type { WorkItem } from '../src/delivery/work-item';
import type { Endpoint } from '../src/endpoints/model';
import { createNotifierMetrics } from '../src/metrics';

/**
 * The dispatcher is handed the partition's AbortSignal, which lives as long as the partition stays assigned
 * (hours, days). A delivery that has left the queue must not leave its abort listener (and with it the work
 * item and its body) on that signal: otherwise every delivered message stays in memory until a rebalance.
 */
const endpoint: Endpoint = {
  id: 'ep_listeners',
  url: 'http://127.0.0.1:9/hooks',
  description: '',
  eventTypes: [],
  vehicleIds: [],
  userIds: [],
  providers: [],
  throttleRate: null,
  enabled: true,
  disabledReason: null,
  disabledAt: null,
  secrets: { current: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', previous: null },
  createdAt: new Date(0).toISOString(),
  updatedAt: new Date(0).toISOString(),
};

function item(i: number): WorkItem {
  return {
    messageId: `msg_${i}`,
    endpointId: endpoint.id,
    type: 'vehicle.telemetry',
    body: JSON.stringify({ type: 'vehicle.telemetry', timestamp: new Date(0).toISOString(), data: { i } }),
    routing: { provider: 'telematica', vehicleIds: [], userId: null, sourceId: `src_${i}` },
    attempt: 1,
    dueAt: 0,
    sourceTimestampMs: 0,
    reason: 'new',
  };
}

it('keeps one abort listener per partition signal, however many deliveries went through', async () => {
  const sender: HttpSender = {
    send: async () => ({
      result: { kind: 'response', status: 204, headers: {} },
      durationMs: 1,
      responseExcerpt: '',
    }),
    close: async () => undefined,
  };
  const writer: DurableWriter = {
    schedule: async () => true,
    deadLetter: async () => true,
    tierOf: (delayMs) => tierFor(delayMs),
  };
  const dispatcher = createDispatcher({
    settings: {
      schedule: retrySchedule({ delaysMs: [0, 100], jitterRatio: 0 }),
      concurrency: 4,
      maxQueuePerEndpoint: 1_000,
      secretOverlapMs: 0,
      circuit: { failureThreshold: 1_000, cooldownMs: 1_000 },
      disableAfterFailingMs: 3_600_000,
    },
    endpoints: { get: () => endpoint, disable: async () => undefined },
    sender,
    writer,
    attempts: {
      record: () => undefined,
      recordDeadLetter: () => undefined,
      clearDeadLetter: () => undefined,
    },
    operational: {
      endpointDisabled: async () => undefined,
      endpointRecovered: async () => undefined,
      attemptsExhausted: async () => undefined,
    },
    metrics: createNotifierMetrics(createMetricsRegistry('listeners', { defaultMetrics: false })),
    logger: pino({ level: 'silent' }),
  });
  const partition = new AbortController();
  const results = await Promise.all(
    Array.from({ length: 50 }, (_, i) => dispatcher.submit(item(i), partition.signal)),
  );
  await dispatcher.drain();
  expect(results.every(Boolean)).toBe(true);
  expect(getEventListeners(partition.signal, 'abort').length).toBeLessThanOrEqual(1);
});
