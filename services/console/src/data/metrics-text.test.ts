import { counterRate, deliveryCounts, failureRate, parseMetricsText, sumOf } from './metrics-text';

const TEXT = `# HELP notifier_deliveries_total Delivery attempts
# TYPE notifier_deliveries_total counter
notifier_deliveries_total{outcome="delivered",status_class="2xx",service="notifier"} 90
notifier_deliveries_total{outcome="retry_scheduled",status_class="5xx",service="notifier"} 8
notifier_deliveries_total{outcome="dead_lettered",status_class="timeout",service="notifier"} 2
notifier_deliveries_total{outcome="endpoint_disabled",status_class="none",service="notifier"} 5
odd_label{path="a \\"quoted\\" \\\\ value"} 1 1700000000000
process_cpu_seconds_total 12.5
not a sample line
`;

describe('parseMetricsText', () => {
  it('reads names, unescaped labels and values, skipping comments, timestamps and garbage', () => {
    const samples = parseMetricsText(TEXT);
    expect(samples).toHaveLength(6);
    expect(samples[0]).toEqual({
      name: 'notifier_deliveries_total',
      labels: { outcome: 'delivered', status_class: '2xx', service: 'notifier' },
      value: 90,
    });
    expect(samples[4]).toEqual({ name: 'odd_label', labels: { path: 'a "quoted" \\ value' }, value: 1 });
    expect(sumOf(samples, 'process_cpu_seconds_total')).toBe(12.5);
    expect(sumOf(samples, 'missing_total')).toBeUndefined();
  });

  it('sums a counter over its series, optionally filtered by label', () => {
    const samples = parseMetricsText(TEXT);
    expect(sumOf(samples, 'notifier_deliveries_total')).toBe(105);
    expect(sumOf(samples, 'notifier_deliveries_total', (l) => l.status_class === '5xx')).toBe(8);
  });
});

describe('rates', () => {
  it('a counter rate is the increase per second; a reset counts from zero', () => {
    expect(counterRate({ atMs: 0, value: 100 }, { atMs: 5_000, value: 150 })).toBe(10);
    expect(counterRate({ atMs: 0, value: 100 }, { atMs: 5_000, value: 20 })).toBe(4);
    expect(counterRate(undefined, { atMs: 5_000, value: 20 })).toBeNull();
    expect(counterRate({ atMs: 0, value: undefined }, { atMs: 5_000, value: 20 })).toBeNull();
    expect(counterRate({ atMs: 5_000, value: 1 }, { atMs: 5_000, value: 2 })).toBeNull();
  });

  it('the failure rate is failed attempts over HTTP attempts in the interval', () => {
    const first = deliveryCounts(parseMetricsText(TEXT));
    expect(first).toEqual({ attempts: 100, delivered: 90, failed: 10 });
    const later = { attempts: 140, delivered: 120, failed: 20 };
    expect(failureRate(first, later)).toBe(0.25);
    expect(failureRate(first, first)).toBeNull();
    expect(failureRate(undefined, later)).toBeNull();
  });
});
