import { createMetricsRegistry } from '@ampflow/observability';
import { OPEN_SESSIONS_TIMEOUT_MS, createAggregatorMetrics } from './metrics';

/** The value of an unlabelled series, or of the one with `operation`, in Prometheus text format. */
function valueOf(text: string, name: string, operation?: string): number | undefined {
  const labels = operation === undefined ? '' : `operation="${operation}",`;
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}`));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

describe('session_aggregator_open_sessions', () => {
  afterEach(() => jest.useRealTimers());

  it('is read from the store at each scrape', async () => {
    const registry = createMetricsRegistry('session-aggregator', { defaultMetrics: false });
    createAggregatorMetrics(registry, async () => 7);

    expect(valueOf(await registry.metrics(), 'session_aggregator_open_sessions')).toBe(7);
  });

  it('keeps its last value and counts a Redis error when the store fails, without failing the scrape', async () => {
    const registry = createMetricsRegistry('session-aggregator', { defaultMetrics: false });
    const answers: Array<() => Promise<number>> = [
      async () => 4,
      () => Promise.reject(new Error('Connection is closed.')),
    ];
    createAggregatorMetrics(registry, () => answers.shift()!());

    await registry.metrics();
    const failed = await registry.metrics();

    expect(valueOf(failed, 'session_aggregator_open_sessions')).toBe(4);
    // Rendered while the gauge was still being read: the error shows from the next scrape on.
    answers.push(async () => 5);
    expect(valueOf(await registry.metrics(), 'session_aggregator_redis_errors_total', 'open_sessions')).toBe(
      1,
    );
  });

  it('gives up on a store that does not answer, so the scrape still answers', async () => {
    jest.useFakeTimers();
    const registry = createMetricsRegistry('session-aggregator', { defaultMetrics: false });
    createAggregatorMetrics(registry, () => new Promise<number>(() => undefined));

    const scrape = registry.metrics();
    await jest.advanceTimersByTimeAsync(OPEN_SESSIONS_TIMEOUT_MS);
    await scrape;
    const next = registry.metrics();
    await jest.advanceTimersByTimeAsync(OPEN_SESSIONS_TIMEOUT_MS);

    expect(valueOf(await next, 'session_aggregator_redis_errors_total', 'open_sessions')).toBe(1);
  });
});
