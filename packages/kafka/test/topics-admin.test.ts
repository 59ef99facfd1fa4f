import pino from 'pino';
import { ConfigResourceTypes, type Kafka } from 'kafkajs';
import { TOPIC_CLASSES, topicConfigEntries } from '@ampflow/contracts';
import { ensureTopics } from '@ampflow/kafka';
import { testKafka, uniqueName } from '@ampflow/testing';

/**
 * ensureTopics against the real broker: topics get the catalogue's configs when created, and existing ones are
 * changed back to them (read back with DescribeConfigs), once, logged.
 */
jest.setTimeout(60_000);

let kafka: Kafka;
beforeAll(() => {
  kafka = testKafka();
});

/** A logger whose records the test reads. */
function recordingLogger() {
  const records: Array<{ msg: string; topic?: string; changes?: unknown }> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void records.push(JSON.parse(line)) });
  return { logger, records };
}

async function readConfigs(topic: string): Promise<{ all: Record<string, string | null>; own: string[] }> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }],
    });
    const entries = resources[0]!.configEntries;
    return {
      all: Object.fromEntries(entries.map((e) => [e.configName, e.configValue])),
      own: entries.filter((e) => !e.isDefault && e.configSource === 1).map((e) => e.configName),
    };
  } finally {
    await admin.disconnect();
  }
}

const catalogueValues = (name: keyof typeof TOPIC_CLASSES) =>
  Object.fromEntries(topicConfigEntries(name).map((e) => [e.name, e.value]));

async function createWith(topic: string, configEntries: { name: string; value: string }[]) {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1, configEntries }] });
  } finally {
    await admin.disconnect();
  }
}

describe('ensureTopics and topic configs', () => {
  it('creates a missing topic with the configs it is given', async () => {
    const topic = uniqueName('cfg-new');
    await ensureTopics(kafka, [
      { topic, numPartitions: 1, configEntries: topicConfigEntries('notifierRetry') },
    ]);
    expect((await readConfigs(topic)).all).toMatchObject(catalogueValues('notifierRetry'));
  });

  it('changes the differing configs of an existing topic, keeps its other own values, and logs once', async () => {
    const compacted = uniqueName('cfg-wrong-policy');
    const defaults = uniqueName('cfg-broker-defaults');
    // A dead-letter topic made compacted, small and short-lived by hand, keeping min.insync.replicas of its own;
    // and one created as topics-admin did before the catalogue: with the broker's defaults.
    await createWith(compacted, [
      { name: 'cleanup.policy', value: 'compact' },
      { name: 'retention.ms', value: '3600000' },
      { name: 'max.message.bytes', value: '65536' },
      { name: 'min.insync.replicas', value: '1' },
    ]);
    await createWith(defaults, []);
    const { logger, records } = recordingLogger();
    const specs = [
      { topic: compacted, configEntries: topicConfigEntries('deadLetter') },
      { topic: defaults, configEntries: topicConfigEntries('webhookDeliveriesDlq') },
    ];

    await ensureTopics(kafka, specs, { logger });

    const fixed = await readConfigs(compacted);
    expect(fixed.all).toMatchObject({ ...catalogueValues('deadLetter'), 'min.insync.replicas': '1' });
    expect(fixed.own.sort()).toEqual(
      ['cleanup.policy', 'retention.ms', 'max.message.bytes', 'min.insync.replicas'].sort(),
    );
    expect((await readConfigs(defaults)).all).toMatchObject(catalogueValues('webhookDeliveriesDlq'));
    const changed = records.filter(
      (r) => r.msg === 'topic configs differed from the catalogue and were changed',
    );
    expect(changed.map((r) => r.topic).sort()).toEqual([compacted, defaults].sort());
    expect(changed.find((r) => r.topic === compacted)?.changes).toEqual([
      { name: 'cleanup.policy', from: 'compact', to: 'delete' },
      { name: 'retention.ms', from: '3600000', to: String(TOPIC_CLASSES.deadLetter.config['retention.ms']) },
      {
        name: 'max.message.bytes',
        from: '65536',
        to: String(TOPIC_CLASSES.deadLetter.config['max.message.bytes']),
      },
    ]);

    // Idempotent: a second run finds nothing to change.
    records.length = 0;
    await ensureTopics(kafka, specs, { logger });
    expect(records).toEqual([]);
  });

  it('leaves an existing topic alone when another service owns its configs', async () => {
    const topic = uniqueName('cfg-not-owned');
    await createWith(topic, [{ name: 'retention.ms', value: '-1' }]);
    await ensureTopics(kafka, [{ topic, configEntries: topicConfigEntries('raw'), correctExisting: false }]);
    expect((await readConfigs(topic)).all['retention.ms']).toBe('-1');
  });
});
