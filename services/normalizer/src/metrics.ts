import { Counter, Gauge, Histogram, type LabelValues, type Registry } from 'prom-client';
import { LATENCY_BUCKETS_SECONDS } from '@ampflow/observability';

/**
 * Counts kept as plain numbers per label set and added to their counter when it is collected (a scrape reads
 * it): prom-client hashes the labels on every increment, which per record costs more than the count is worth.
 */
class Tally<L extends string> {
  private readonly pending = new Map<string, { labels: LabelValues<L>; count: number }>();

  /** Counts `n` for the label set `labels`, which `key` names (the same key, the same labels). */
  add(key: string, labels: LabelValues<L>, n = 1): void {
    const entry = this.pending.get(key);
    if (entry) entry.count += n;
    else this.pending.set(key, { labels, count: n });
  }

  flushInto(counter: Counter<L>): void {
    for (const entry of this.pending.values()) {
      if (entry.count === 0) continue;
      counter.inc(entry.labels, entry.count);
      entry.count = 0;
    }
  }
}

export function createNormalizerMetrics(registry: Registry) {
  const recordsIn = new Tally<'provider' | 'event_type'>();
  const recordsOut = new Tally<'topic'>();
  const skippedSignals = new Tally<'provider' | 'reason'>();
  return {
    recordsIn: new Counter({
      name: 'normalizer_records_in_total',
      help: 'Raw records consumed, by provider and event type',
      labelNames: ['provider', 'event_type'] as const,
      registers: [registry],
      collect() {
        recordsIn.flushInto(this);
      },
    }),
    recordsOut: new Counter({
      name: 'normalizer_records_out_total',
      help: 'Canonical records produced and acknowledged, by topic',
      labelNames: ['topic'] as const,
      registers: [registry],
      collect() {
        recordsOut.flushInto(this);
      },
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
      collect() {
        skippedSignals.flushInto(this);
      },
    }),
    mappingSeconds: new Histogram({
      name: 'normalizer_mapping_duration_seconds',
      help: 'Time to parse, map and Avro-encode one raw record',
      buckets: LATENCY_BUCKETS_SECONDS,
      registers: [registry],
    }),
    consumerLag: new Gauge({
      name: 'normalizer_consumer_lag',
      help: 'Records of the partition not normalized yet (behind its high watermark, or in flight)',
      labelNames: ['topic', 'partition'] as const,
      registers: [registry],
    }),
    /** Per record, counted into `normalizer_records_in_total` at the next scrape. */
    countIn(provider: string, eventType: string): void {
      recordsIn.add(`${provider}\u0000${eventType}`, { provider, event_type: eventType });
    },
    /** Per acknowledged output, counted into `normalizer_records_out_total` at the next scrape. */
    countOut(topic: string): void {
      recordsOut.add(topic, { topic });
    },
    countSkippedSignals(provider: string, reason: 'failed' | 'unknown_code', n: number): void {
      skippedSignals.add(`${provider}\u0000${reason}`, { provider, reason }, n);
    },
  };
}

export type NormalizerMetrics = ReturnType<typeof createNormalizerMetrics>;
