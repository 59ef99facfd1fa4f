import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LATENCY_BUCKETS_SECONDS } from '@ampflow/observability';

export function createNormalizerMetrics(registry: Registry) {
  return {
    recordsIn: new Counter({
      name: 'normalizer_records_in_total',
      help: 'Raw records consumed, by provider and event type',
      labelNames: ['provider', 'event_type'] as const,
      registers: [registry],
    }),
    recordsOut: new Counter({
      name: 'normalizer_records_out_total',
      help: 'Canonical records produced and acknowledged, by topic',
      labelNames: ['topic'] as const,
      registers: [registry],
    }),
    deadLetters: new Counter({
      name: 'normalizer_dead_letters_total',
      help: 'Raw records sent to <topic>.dlq, by source topic and reason',
      labelNames: ['source_topic', 'reason'] as const,
      registers: [registry],
    }),
    skippedSignals: new Counter({
      name: 'normalizer_skipped_signals_total',
      help: 'Provider signals left out of canonical records: failed (status ERROR) or of an unknown code',
      labelNames: ['provider', 'reason'] as const,
      registers: [registry],
    }),
    mappingSeconds: new Histogram({
      name: 'normalizer_mapping_duration_seconds',
      help: 'Time to parse, map and Avro-encode one raw record',
      buckets: LATENCY_BUCKETS_SECONDS,
      registers: [registry],
    }),
    consumerLag: new Gauge({
      name: 'normalizer_consumer_lag',
      help: 'Records behind the partition high watermark after the last batch',
      labelNames: ['topic', 'partition'] as const,
      registers: [registry],
    }),
  };
}

export type NormalizerMetrics = ReturnType<typeof createNormalizerMetrics>;
