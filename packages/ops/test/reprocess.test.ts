import type { Consumer, Kafka, Producer } from 'kafkajs';
import { PROVIDERS, rawTopic } from '@ampflow/contracts';
import { GroupActiveError, reprocessRawTopics, runCli, type ReprocessReport } from '@ampflow/ops';
import { createTopics, eventually, testEndpoints, testKafka, uniqueName } from '@ampflow/testing';

/** Moving a test group's offsets on raw topics that live under a unique KAFKA_TOPIC_PREFIX. */
jest.setTimeout(120_000);

let kafka: Kafka;
let producer: Producer;

beforeAll(async () => {
  kafka = testKafka();
  producer = kafka.producer();
  await producer.connect();
});

afterAll(() => producer.disconnect());

const base = Date.parse('2026-05-01T00:00:00Z');

/** Raw topics with records at known times, and a group that has read all of them. */
async function setUp() {
  const prefix = `${uniqueName('ops')}.`;
  const [smartcar, telematica] = PROVIDERS.map((p) => prefix + rawTopic(p)) as [string, string];
  await createTopics(kafka, [smartcar, telematica], 2);
  const at = (topic: string, times: number[]) =>
    producer.send({
      topic,
      messages: times.map((t, i) => ({ partition: 0, timestamp: String(t), value: `r${i}` })),
    });
  // smartcar partition 0: offsets 0..4 at base + 0, 1, 2, 3, 4 s; telematica partition 0: offsets 0..2 at +10 s.
  await at(
    smartcar,
    [0, 1, 2, 3, 4].map((s) => base + s * 1000),
  );
  await at(
    telematica,
    [10, 11, 12].map((s) => base + s * 1000),
  );
  const groupId = uniqueName('normalizer');
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.setOffsets({ groupId, topic: smartcar, partitions: [{ partition: 0, offset: '5' }] });
    await admin.setOffsets({ groupId, topic: telematica, partitions: [{ partition: 0, offset: '3' }] });
  } finally {
    await admin.disconnect();
  }
  return { prefix, smartcar, telematica, groupId };
}

async function committed(groupId: string, topic: string) {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [entry] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return Object.fromEntries(entry!.partitions.map((p) => [p.partition, p.offset]));
  } finally {
    await admin.disconnect();
  }
}

describe('reprocess', () => {
  it('plans, then moves the group back to the first record at or after --since', async () => {
    const { prefix, smartcar, telematica, groupId } = await setUp();
    const since = new Date(base + 2500);
    const bumps: string[] = [];
    const plan = await reprocessRawTopics(kafka, {
      topics: [smartcar, telematica],
      groupId,
      since,
      execute: false,
      redeliver: async () => (bumps.push('bump'), 1),
    });
    // Planning bumps nothing either; the report says what --execute would do to customer webhooks.
    expect(bumps).toEqual([]);
    expect(plan).toMatchObject({ customerWebhooks: 'redeliver', doneGeneration: null });
    expect(plan.plan.map((r) => [r.topic, r.partition, r.current, r.next, r.action, r.toReprocess])).toEqual([
      [smartcar, 0, 5, 3, 'rewind', 2],
      [smartcar, 1, null, 0, 'unchanged', 0],
      [telematica, 0, 3, 0, 'rewind', 3],
      [telematica, 1, null, 0, 'unchanged', 0],
    ]);
    expect(plan.toReprocess).toBe(5);
    // Planning moved nothing.
    expect(await committed(groupId, smartcar)).toMatchObject({ 0: '5' });

    const stdout: string[] = [];
    const code = await runCli(
      ['reprocess', '--since', since.toISOString(), '--group', groupId, '--execute', '--json'],
      {
        env: {
          KAFKA_BROKERS: testEndpoints().kafkaBrokers.join(','),
          KAFKA_TOPIC_PREFIX: prefix,
          LOG_LEVEL: 'silent',
        },
        stdout: { write: (s: string) => stdout.push(s) },
        stderr: { write: () => true },
      },
    );
    expect(code).toBe(0);
    expect((JSON.parse(stdout.join('')) as ReprocessReport).executed).toBe(true);
    expect(await committed(groupId, smartcar)).toMatchObject({ 0: '3' });
    expect(await committed(groupId, telematica)).toMatchObject({ 0: '0' });

    // Run again: the group is already at --since, nothing moves further.
    const again = await reprocessRawTopics(kafka, {
      topics: [smartcar, telematica],
      groupId,
      since,
      execute: true,
    });
    expect(again.toReprocess).toBe(0);
    expect(await committed(groupId, smartcar)).toMatchObject({ 0: '3' });
  });

  it('refuses while the group has an active member, saying to stop the normalizer', async () => {
    const { prefix, smartcar, telematica, groupId } = await setUp();
    const consumer: Consumer = kafka.consumer({ groupId });
    await consumer.connect();
    try {
      await consumer.subscribe({ topics: [smartcar, telematica], fromBeginning: false });
      await consumer.run({ autoCommit: false, eachMessage: async () => undefined });
      await eventually(async () => {
        const admin = kafka.admin();
        await admin.connect();
        const { groups } = await admin.describeGroups([groupId]).finally(() => admin.disconnect());
        return groups[0]?.state === 'Stable';
      }, 'the member to join');

      const bumps: string[] = [];
      await expect(
        reprocessRawTopics(kafka, {
          topics: [smartcar, telematica],
          groupId,
          since: new Date(base),
          execute: true,
          redeliver: async () => (bumps.push('bump'), 1),
        }),
      ).rejects.toThrow(GroupActiveError);
      // Refused before the notifier's done-mark generation is touched.
      expect(bumps).toEqual([]);
      const stderr: string[] = [];
      const code = await runCli(
        ['reprocess', '--since', new Date(base).toISOString(), '--group', groupId, '--execute'],
        {
          env: {
            KAFKA_BROKERS: testEndpoints().kafkaBrokers.join(','),
            KAFKA_TOPIC_PREFIX: prefix,
            LOG_LEVEL: 'silent',
          },
          stdout: { write: () => true },
          stderr: { write: (s: string) => stderr.push(s) },
        },
      );
      expect(code).toBe(1);
      expect(stderr.join('')).toMatch(/group_active: .* stop the normalizer/);
    } finally {
      await consumer.disconnect();
    }
    expect(await committed(groupId, smartcar)).toMatchObject({ 0: '5' });
  });
});
