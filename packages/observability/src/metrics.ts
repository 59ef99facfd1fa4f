import { Registry, collectDefaultMetrics } from 'prom-client';

export { Registry };

/**
 * How often Node's event-loop delay monitor samples, in ms. prom-client's default (10 ms) wakes an idle
 * process 100 times a second, 0.3 % of a core on this machine for nothing; at 100 ms it costs about a
 * third of that, and a stall of the loop still shows in the max and the percentiles.
 */
export const EVENT_LOOP_MONITORING_PRECISION_MS = 100;

/**
 * A registry per service (never the global one, so tests can run several apps in one process) with
 * Node's default metrics and a `service` label on every series.
 */
export function createMetricsRegistry(
  service: string,
  options: { defaultMetrics?: boolean; eventLoopMonitoringPrecisionMs?: number } = {},
): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  if (options.defaultMetrics ?? true) {
    collectDefaultMetrics({
      register: registry,
      eventLoopMonitoringPrecision:
        options.eventLoopMonitoringPrecisionMs ?? EVENT_LOOP_MONITORING_PRECISION_MS,
    });
  }
  return registry;
}

/** Histogram buckets in seconds for work that should take milliseconds (publish, Redis, mapping). */
export const LATENCY_BUCKETS_SECONDS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
