import pino from 'pino';
import { Topics, type CanonicalTopic } from '@ampflow/contracts';
import { createKafka, createReliableProducer, ensureTopics, type ReliableProducer } from '@ampflow/kafka';
import { createMetricsRegistry } from '@ampflow/observability';
import {
  collectRecords,
  eventually,
  rawTelematicaSocRecord,
  startFaultStack,
  uniqueName,
  type FaultStack,
} from '@ampflow/testing';
import { createNormalizerApp } from '../src/app';

/**
 * Issue 8, fault 2: the broker SIGKILLed and restarted while the normalizer works through a backlog. It used to
 * get OUT_OF_ORDER_SEQUENCE_NUMBER on every retry while reporting ready. Every raw record acknowledged before
 * and after the kill must come out on the canonical topic, without a restart of the normalizer.
 */
jest.setTimeout(300_000);

const logger = pino({ level: process.env.AMPFLOW_TEST_LOG ?? 'silent' });
const PER_PHASE = 1_500;

let stack: FaultStack;
beforeAll(async () => {
  stack = await startFaultStack();
});
afterAll(async () => {
  await stack?.stop();
});

async function feed(producer: ReliableProducer, topic: string, ids: string[]): Promise<void> {
  await Promise.all(
    ids.map((id, i) => producer.send(topic, [rawTelematicaSocRecord(id, `vehicle-${i % 50}`)])),
  );
}

it('recovers from a broker SIGKILL by itself and delivers every acknowledged record', async () => {
  const prefix = uniqueName('kill');
  const rawTopic = `${prefix}.raw.telematica`;
  const topicName = (t: CanonicalTopic) => `${prefix}.${t}`;
  const kafka = () => createKafka({ brokers: stack.kafkaBrokers, clientId: uniqueName('kill'), logger });
  const feeder = createReliableProducer(kafka());
  await ensureTopics(kafka(), [{ topic: rawTopic, numPartitions: 3 }]);
  await feeder.connect();
  const fatal: unknown[] = [];
  const app = createNormalizerApp({
    settings: {
      httpPort: 0,
      schemaRegistryUrl: stack.schemaRegistryUrl,
      shutdownDrainMs: 5_000,
      consumerGroupId: uniqueName('normalizer'),
      canonicalTopicPartitions: 3,
      rawTopics: [rawTopic],
      canonicalTopicName: topicName,
      initialRetryMs: 200,
      maxRetryMs: 2_000,
      notReadyAfterMs: 3_000,
    },
    kafka: kafka(),
    logger,
    registry: createMetricsRegistry('normalizer', { defaultMetrics: false }),
    onFatal: (error) => fatal.push(error),
  });
  await app.start();
  const collector = await collectRecords(kafka(), [topicName(Topics.vehicleTelemetry)]);
  try {
    const before = Array.from({ length: PER_PHASE }, (_, i) => `msg_before_${i}`);
    await feed(feeder, rawTopic, before);
    // Kill while the normalizer is still working through the backlog.
    await stack.killKafka('SIGKILL');
    await eventually(
      () => !app.isReady(),
      'the normalizer to report not ready while the broker is gone',
      60_000,
    );
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const restartAt = Date.now();
    await stack.startKafka();

    const after = Array.from({ length: PER_PHASE }, (_, i) => `msg_after_${i}`);
    await feed(feeder, rawTopic, after);
    const expected = [...before, ...after].map((id) => `telematica:${id}`);
    const seen = () => new Set(collector.records.map((r) => r.headers['event-id']));
    await eventually(
      () => expected.every((id) => seen().has(id)),
      'every acknowledged record on the canonical topic',
      180_000,
      500,
    ).catch(() => undefined);
    const recoveredInMs = Date.now() - restartAt;
    const missing = expected.filter((id) => !seen().has(id));
    logger.info(
      { recoveredInMs, duplicates: collector.records.length - seen().size },
      'broker kill recovered',
    );
    process.stderr.write(
      `[broker-kill] all ${expected.length} records out ${recoveredInMs} ms after the broker restart; ` +
        `${collector.records.length - seen().size} duplicates\n`,
    );
    expect({ missing: missing.length, fatal }).toEqual({ missing: 0, fatal: [] });
    await eventually(() => app.isReady(), 'the normalizer to report ready again', 60_000);
  } finally {
    await collector.stop().catch(() => undefined);
    await app.stop().catch(() => undefined);
    await feeder.disconnect().catch(() => undefined);
  }
});
