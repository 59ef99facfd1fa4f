import { Registry, collectDefaultMetrics } from 'prom-client';

export { Registry };

/**
 * A registry per service (never the global one, so tests can run several apps in one process) with
 * Node's default metrics and a `service` label on every series.
 */
export function createMetricsRegistry(service: string, options: { defaultMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  return registry;
}

/** Histogram buckets in seconds for work that should take milliseconds (publish, Redis, mapping). */
export const LATENCY_BUCKETS_SECONDS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
