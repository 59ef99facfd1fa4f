import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LATENCY_BUCKETS_SECONDS } from '@ampflow/observability';

/** How long a scrape waits for Redis to count the open sessions (the compose scrape timeout is 5 s). */
export const OPEN_SESSIONS_TIMEOUT_MS = 1_000;

/** The count, or a rejection once `timeoutMs` has passed; a late answer or failure is dropped. */
async function within<T>(work: Promise<T>, timeoutMs: number): Promise<T> {
  work.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function createAggregatorMetrics(registry: Registry, openSessions: () => Promise<number>) {
  const redisErrors = new Counter({
    name: 'session_aggregator_redis_errors_total',
    help: 'Redis failures, by operation: load or save of a chunk (the chunk is retried), open_sessions (counting them for a scrape failed or took over 1 s; the gauge keeps its last value), connection (the client lost or could not open its connection; it reconnects by itself)',
    labelNames: ['operation'] as const,
    registers: [registry],
  });
  return {
    readings: new Counter({
      name: 'session_aggregator_readings_total',
      help: 'Telemetry readings by outcome: applied, duplicate (seen before), late (older than the last applied)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    started: new Counter({
      name: 'session_aggregator_sessions_started_total',
      help: 'Charging sessions started',
      registers: [registry],
    }),
    ended: new Counter({
      name: 'session_aggregator_sessions_ended_total',
      help: 'Charging sessions ended, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    openSessions: new Gauge({
      name: 'session_aggregator_open_sessions',
      help: 'Charging sessions open now (across all instances)',
      registers: [registry],
      // A failing or hanging Redis must not fail the whole scrape (Prometheus would see the aggregator down and
      // lose the very counters that say why): the gauge keeps its last value and the failure is counted.
      async collect() {
        try {
          this.set(await within(openSessions(), OPEN_SESSIONS_TIMEOUT_MS));
        } catch {
          redisErrors.inc({ operation: 'open_sessions' });
        }
      },
    }),
    redisSeconds: new Histogram({
      name: 'session_aggregator_redis_duration_seconds',
      help: 'Redis round trip of one chunk operation (load or save of many vehicles)',
      labelNames: ['operation'] as const,
      buckets: LATENCY_BUCKETS_SECONDS,
      registers: [registry],
    }),
    stateResets: new Counter({
      name: 'session_aggregator_state_resets_total',
      help: 'Chunks and sweeps that found Redis emptied (no restore marker) at load or save and were retried',
      labelNames: ['at'] as const,
      registers: [registry],
    }),
    restores: new Counter({
      name: 'session_aggregator_state_restores_total',
      help: 'Restores of Redis from the state changelog topic run by this instance, by outcome',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    restoreSeconds: new Histogram({
      name: 'session_aggregator_state_restore_duration_seconds',
      help: 'Time to refill an emptied Redis from the state changelog topic (read to the high watermarks)',
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
      registers: [registry],
    }),
    restoredVehicles: new Gauge({
      name: 'session_aggregator_state_restored_vehicles',
      help: 'Vehicles whose state the last restore by this instance wrote back to Redis',
      registers: [registry],
    }),
    deadLetters: new Counter({
      name: 'session_aggregator_dead_letters_total',
      help: 'Telemetry records sent to the dead-letter topic, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    consumerLag: new Gauge({
      name: 'session_aggregator_consumer_lag',
      help: 'Telemetry records behind the partition high watermark after the last batch',
      labelNames: ['topic', 'partition'] as const,
      registers: [registry],
    }),
    redisErrors,
  };
}

export type AggregatorMetrics = ReturnType<typeof createAggregatorMetrics>;
