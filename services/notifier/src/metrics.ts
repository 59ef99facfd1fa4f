import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LATENCY_BUCKETS_SECONDS } from '@ampflow/observability';

/** Seconds from a source record to the first attempt of its delivery: up to minutes when backed up. */
const LAG_BUCKETS_SECONDS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export function createNotifierMetrics(registry: Registry) {
  return {
    deliveries: new Counter({
      name: 'notifier_deliveries_total',
      help: 'Delivery attempts by outcome (delivered, retry_scheduled, dead_lettered, endpoint_disabled) and status class (2xx, 4xx, 5xx, 3xx, timeout, network_error)',
      labelNames: ['outcome', 'status_class'] as const,
      registers: [registry],
    }),
    attemptSeconds: new Histogram({
      name: 'notifier_attempt_duration_seconds',
      help: 'Duration of one HTTP delivery attempt, connect to response (or timeout)',
      buckets: LATENCY_BUCKETS_SECONDS,
      registers: [registry],
    }),
    lagSeconds: new Histogram({
      name: 'notifier_delivery_lag_seconds',
      help: 'From the source record (Kafka timestamp) to the first delivery attempt',
      buckets: LAG_BUCKETS_SECONDS,
      registers: [registry],
    }),
    pendingRetries: new Gauge({
      name: 'notifier_pending_retries',
      help: 'Deliveries waiting in a retry tier (records behind the high watermark plus taken and not done), by tier',
      labelNames: ['tier'] as const,
      registers: [registry],
    }),
    deferred: new Counter({
      name: 'notifier_deferred_total',
      help: 'Deliveries moved to a retry tier without an attempt, by reason (queue_full: the queue is full or its expected wait too long; circuit_open)',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    deadLetters: new Counter({
      name: 'notifier_dead_letters_total',
      help: 'Deliveries written to ev.webhook-deliveries.dlq, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    oversized: new Counter({
      name: 'notifier_oversized_records_total',
      help: 'Records Kafka refused as larger than their topic allows (record_too_large), by topic_kind (retry_tier, dlq) and what became of them (dead_lettered: a work item kept as a dead letter; body_omitted, minimal: a dead letter written without its body, or with ids and reason only; lost: not even that fitted)',
      labelNames: ['topic_kind', 'outcome'] as const,
      registers: [registry],
    }),
    openCircuits: new Gauge({
      name: 'notifier_open_circuits',
      help: 'Endpoints whose circuit is open or half-open (paused after consecutive failures), over the whole deployment: every instance reports the same figure (take the max, not the sum)',
      registers: [registry],
    }),
    circuitsOpened: new Counter({
      name: 'notifier_circuits_opened_total',
      help: "Circuits this instance opened (closed to open after consecutive failures; a failed probe's re-opening not counted); summed over instances, one per endpoint failure run",
      registers: [registry],
    }),
    endpoints: new Gauge({
      name: 'notifier_endpoints',
      help: 'Endpoints, by state (enabled, disabled)',
      labelNames: ['state'] as const,
      registers: [registry],
    }),
    events: new Counter({
      name: 'notifier_events_total',
      help: 'Customer events made from source records, by type',
      labelNames: ['type'] as const,
      registers: [registry],
    }),
    sourceLag: new Gauge({
      name: 'notifier_consumer_lag',
      help: 'Source records behind the partition high watermark plus those taken and not yet durable',
      labelNames: ['topic', 'partition'] as const,
      registers: [registry],
    }),
    deliveryLag: new Gauge({
      name: 'notifier_delivery_lag',
      help: 'Deliveries behind the high watermark of a deliveries-topic partition this instance holds, plus those taken and not yet done',
      labelNames: ['partition'] as const,
      registers: [registry],
    }),
    queued: new Gauge({
      name: 'notifier_queued_deliveries',
      help: 'Deliveries in the in-memory per-endpoint queues, waiting for a concurrency slot or the throttle',
      registers: [registry],
    }),
    redisErrors: new Counter({
      name: 'notifier_redis_errors_total',
      help: 'Redis failures, by operation: connection (the client lost or could not open its connection; it reconnects by itself)',
      labelNames: ['operation'] as const,
      registers: [registry],
    }),
  };
}

export type NotifierMetrics = ReturnType<typeof createNotifierMetrics>;

/**
 * A labelled counter's children by label values, looked up in a map instead of prom-client hashing a labels
 * object on every increment (the delivery path counts every attempt and every event). Label values here come
 * from small fixed sets (outcomes, status classes, event types), so the map stays small.
 */
export function counterChildren<L extends string>(
  counter: Counter<L>,
  ...labelNames: L[]
): (...values: string[]) => { inc(value?: number): void } {
  const children = new Map<string, { inc(value?: number): void }>();
  return (...values) => {
    const key = values.join('\u0000');
    let child = children.get(key);
    if (child === undefined) {
      const labels = {} as Record<L, string>;
      labelNames.forEach((name, i) => (labels[name] = values[i]!));
      child = counter.labels(labels);
      children.set(key, child);
    }
    return child;
  };
}

/** `2xx`, `4xx`, ..., or `timeout` / `network_error` when no response came. */
export function statusClass(status: number | null, failure?: string): string {
  if (status === null) return failure ?? 'network_error';
  return `${Math.floor(status / 100)}xx`;
}
