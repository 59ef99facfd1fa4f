/** One sample of Prometheus text exposition format. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * Parses Prometheus text format (what prom-client's `/metrics` writes): comment lines are skipped, label
 * values unescaped, a trailing timestamp ignored. Lines that do not parse are skipped, not fatal: one odd
 * series must not hide the rest.
 */
export function parseMetricsText(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1]!] = pair[2]!.replace(/\\(.)/g, (_m, c: string) => (c === 'n' ? '\n' : c));
    }
    const value = Number(match[3] === '+Inf' ? Infinity : match[3] === '-Inf' ? -Infinity : match[3]);
    if (Number.isNaN(value) && match[3] !== 'NaN') continue;
    samples.push({ name: match[1]!, labels, value });
  }
  return samples;
}

/** The sum of every series of `name` whose labels match `where` (undefined when there is none). */
export function sumOf(
  samples: Sample[],
  name: string,
  where: (labels: Record<string, string>) => boolean = () => true,
): number | undefined {
  let total: number | undefined;
  for (const s of samples) {
    if (s.name !== name || !where(s.labels)) continue;
    total = (total ?? 0) + s.value;
  }
  return total;
}

/**
 * Per-second rate of a counter between two readings. A counter that went down was reset (the service
 * restarted): its new value is what it counted since. Null when either reading is missing or no time passed.
 */
export function counterRate(
  previous: { atMs: number; value: number | undefined } | undefined,
  current: { atMs: number; value: number | undefined },
): number | null {
  if (!previous || previous.value === undefined || current.value === undefined) return null;
  const seconds = (current.atMs - previous.atMs) / 1000;
  if (seconds <= 0) return null;
  const delta = current.value >= previous.value ? current.value - previous.value : current.value;
  return delta / seconds;
}

/**
 * The counter each service counts its input with, for records/s: requests at the ingress, raw records at the
 * normalizer, readings at the session-aggregator, customer events made at the notifier (services/<service>/
 * src/metrics.ts). A service not listed gets no rate.
 */
export const RECORDS_IN_COUNTERS: Record<string, string> = {
  ingress: 'ingress_requests_total',
  normalizer: 'normalizer_records_in_total',
  'session-aggregator': 'session_aggregator_readings_total',
  notifier: 'notifier_events_total',
};

/** Delivery attempts (`notifier_deliveries_total`) by outcome: those that were an HTTP attempt, and failed. */
const ATTEMPT_OUTCOMES = new Set(['delivered', 'retry_scheduled', 'dead_lettered']);
const FAILED_OUTCOMES = new Set(['retry_scheduled', 'dead_lettered']);

/** The notifier's attempt counters: all HTTP attempts, those delivered, those failed. */
export function deliveryCounts(samples: Sample[]): {
  attempts?: number;
  delivered?: number;
  failed?: number;
} {
  const name = 'notifier_deliveries_total';
  return {
    attempts: sumOf(samples, name, (l) => ATTEMPT_OUTCOMES.has(l.outcome ?? '')),
    delivered: sumOf(samples, name, (l) => l.outcome === 'delivered'),
    failed: sumOf(samples, name, (l) => FAILED_OUTCOMES.has(l.outcome ?? '')),
  };
}

/**
 * Share of the attempts between two readings that failed (0..1); null when no attempt was made. Counter
 * resets count as in {@link counterRate}.
 */
export function failureRate(
  previous: { attempts?: number; failed?: number } | undefined,
  current: { attempts?: number; failed?: number },
): number | null {
  if (!previous) return null;
  const delta = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined ? undefined : b >= a ? b - a : b;
  const attempts = delta(previous.attempts, current.attempts);
  const failed = delta(previous.failed, current.failed) ?? 0;
  if (!attempts) return null;
  return failed / attempts;
}
