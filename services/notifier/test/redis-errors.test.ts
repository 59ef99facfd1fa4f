import { eventually, metricValue, startRedisProcess } from '@ampflow/testing';
import { managedNotifiers, startNotifier } from './harness';

/**
 * The series the alert NotifierRedisErrors reads (deploy/prometheus/alerts.yml): a notifier whose Redis (one of
 * the test's own) goes away counts the lost connection on /metrics, which keeps answering.
 */

const { cleanups } = managedNotifiers();

it('counts a lost Redis connection on /metrics', async () => {
  const redis = await startRedisProcess();
  cleanups.push(() => redis.stop());
  const n = await startNotifier({}, { redisUrl: redis.url });
  cleanups.push(() => n.stop());
  const errors = async () => {
    const response = await fetch(`http://127.0.0.1:${n.app.port()}/metrics`);
    expect(response.status).toBe(200);
    return metricValue(await response.text(), 'notifier_redis_errors_total', { operation: 'connection' });
  };
  expect(await errors()).toBeUndefined();

  await redis.kill();
  await eventually(async () => ((await errors()) ?? 0) > 0, 'the lost connection counted', 30_000, 100);

  // Back, so that the notifier stops cleanly.
  await redis.restart();
});
