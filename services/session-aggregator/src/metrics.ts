import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LATENCY_BUCKETS_SECONDS } from '@ampflow/observability';

export function createAggregatorMetrics(registry: Registry, openSessions: () => Promise<number>) {
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
      async collect() {
        this.set(await openSessions());
      },
    }),
    redisSeconds: new Histogram({
      name: 'session_aggregator_redis_duration_seconds',
      help: 'Redis round trip of one chunk operation (load or save of many vehicles)',
      labelNames: ['operation'] as const,
      buckets: LATENCY_BUCKETS_SECONDS,
      registers: [registry],
    }),
    deadLetters: new Counter({
      name: 'session_aggregator_dead_letters_total',
      help: 'Telemetry records sent to the dead-letter topic, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
  };
}

export type AggregatorMetrics = ReturnType<typeof createAggregatorMetrics>;
