import { Counter, Gauge, type Registry } from 'prom-client';

/** The console data's own metrics (`console_` prefix), on the registry the console serves at /metrics. */
export function createConsoleDataMetrics(
  registry: Registry,
  sizes: { traceRecords: () => number; traceBytes: () => number; sessions: () => number },
) {
  return {
    indexRecords: new Gauge({
      name: 'console_trace_index_records',
      help: 'Records held by the trace index (raw, canonical, session changes, dead letters); bounded by maxEvents',
      registers: [registry],
      collect() {
        this.set(sizes.traceRecords());
      },
    }),
    indexBytes: new Gauge({
      name: 'console_trace_index_bytes',
      help: 'Estimated bytes held by the trace index (bounded at 256 MiB)',
      registers: [registry],
      collect() {
        this.set(sizes.traceBytes());
      },
    }),
    indexSessions: new Gauge({
      name: 'console_trace_index_sessions',
      help: 'Charging sessions held (the latest change of each)',
      registers: [registry],
      collect() {
        this.set(sizes.sessions());
      },
    }),
    evictions: new Counter({
      name: 'console_trace_index_evictions_total',
      help: 'Records dropped from the trace index, by reason: count (maxEvents reached), bytes (memory budget reached) or age (older than maxAgeMs)',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    recordsRead: new Counter({
      name: 'console_trace_index_records_read_total',
      help: 'Records the trace index consumer read, by topic (without the prefix)',
      labelNames: ['topic'] as const,
      registers: [registry],
    }),
  };
}
