import Redis from 'ioredis';
import { PROVIDERS, rawTopic, Topics } from '@ampflow/contracts';
import { notifierDoneGenerationKey, runCli } from '@ampflow/ops';
import { createTopics, eventually, testEndpoints, testKafka, uniqueName } from '@ampflow/testing';
import { telemetry } from './fixtures';
import { deliveredIds, managedNotifiers, registerSink, type NotifierUnderTest } from './harness';

/**
 * Issue 15, item 4: what `npm run ops -- reprocess` means for customer webhooks. The normalizer's replay of a
 * reading is the same canonical record again (same `eventId`, so the same `webhook-id`); here the test writes it
 * again itself, as the normalizer would after the offsets moved. By default the notifier's done marks keep a
 * delivered one from being sent again (and the tool says so); `--redeliver` bumps the done-mark generation the
 * notifier reads with its marks, and the replay is delivered again with its original id.
 */
jest.setTimeout(90_000);

const { notifier, sink, cleanups } = managedNotifiers();

async function reprocess(n: NotifierUnderTest, group: string, extra: string[]) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await runCli(
    ['reprocess', '--since', new Date().toISOString(), '--group', group, '--execute', ...extra],
    {
      env: {
        KAFKA_BROKERS: testEndpoints().kafkaBrokers.join(','),
        KAFKA_TOPIC_PREFIX: n.prefix,
        REDIS_URL: testEndpoints().redisUrl,
        NOTIFIER_REDIS_NAMESPACE: n.settings.redisNamespace,
        LOG_LEVEL: 'silent',
      },
      stdout: { write: (text: string) => stdout.push(text) },
      stderr: { write: (text: string) => stderr.push(text) },
    },
  );
  expect({ code, stderr: stderr.join('') }).toEqual({ code: 0, stderr: '' });
  return stdout.join('');
}

describe('reprocess and customer webhooks', () => {
  it('skips what was delivered by default and says so; --redeliver delivers the replay again with the same id', async () => {
    // One attempt at a time: deliveries to the sink go out in the order their records were read.
    const n = await notifier({ endpointConcurrency: 1 });
    const s = await sink();
    await registerSink(n, s, { eventTypes: ['vehicle.telemetry'] });
    const kafka = testKafka();
    await createTopics(
      kafka,
      PROVIDERS.map((p) => n.prefix + rawTopic(p)),
      1,
    );
    const group = uniqueName('normalizer');
    const redis = new Redis(testEndpoints().redisUrl);
    cleanups.push(async () => {
      await redis.del(notifierDoneGenerationKey(n.settings.redisNamespace));
      await redis.quit();
    });

    const vehicle = `telematica:${uniqueName('v')}`;
    const reading = telemetry(vehicle, 1);
    await n.produce(Topics.vehicleTelemetry, [reading]);
    await eventually(() => deliveredIds(s).length === 1, 'the first delivery');
    const id = deliveredIds(s)[0]!;

    const plain = await reprocess(n, group, []);
    expect(plain).toMatch(/does not send again what it delivered in the last 48 hours/);
    expect(plain).toMatch(/--redeliver/);
    // The replayed reading, then a new one behind it (same vehicle, same partition): once the new one is
    // delivered, the replay was decided before it.
    await n.produce(Topics.vehicleTelemetry, [reading, telemetry(vehicle, 2)]);
    await eventually(() => deliveredIds(s).length >= 2, 'the reading after the replay');
    const afterPlain = deliveredIds(s);
    expect(afterPlain[1]).not.toBe(id);

    const again = await reprocess(n, group, ['--redeliver']);
    expect(again).toMatch(/sent again for every reprocessed record.*generation now 1/s);
    await n.produce(Topics.vehicleTelemetry, [reading, telemetry(vehicle, 3)]);
    await eventually(() => deliveredIds(s).length >= 4, 'the replay and the reading after it');
    const delivered = deliveredIds(s);
    // Delivered again, with the webhook-id the receiver saw the first time, and only once.
    expect(delivered[2]).toBe(id);
    expect(delivered.filter((x) => x === id)).toHaveLength(2);
    expect(new Set(delivered).size).toBe(3);
  });
});
