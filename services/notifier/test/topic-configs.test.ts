import { ConfigResourceTypes } from 'kafkajs';
import { NotifierTopics, Topics, topicConfigEntries, type TopicClassName } from '@ampflow/contracts';
import { ensureTopics } from '@ampflow/kafka';
import { testKafka, uniqueName } from '@ampflow/testing';
import { NOTIFIER_ENDPOINTS_TOPIC, sourceTopics } from '../src/app';
import { RETRY_TIERS, retryTopic } from '../src/delivery/retry-tiers';
import { startNotifier } from './harness';

/**
 * The notifier's topics get the catalogue's configs (packages/contracts/src/topic-configs.ts) at start, also
 * when they exist already as earlier versions created them: with the broker's defaults (24 h of retention on
 * the local stack), too short for deliveries that wait out an endpoint's 5-day disable window.
 */
jest.setTimeout(60_000);

const kafka = testKafka();

async function configsOf(topics: string[]): Promise<Map<string, Record<string, string | null>>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: topics.map((name) => ({ type: ConfigResourceTypes.TOPIC, name })),
    });
    return new Map(
      resources.map((r) => [
        r.resourceName,
        Object.fromEntries(r.configEntries.map((e) => [e.configName, e.configValue])),
      ]),
    );
  } finally {
    await admin.disconnect();
  }
}

it("changes existing retry tiers, deliveries DLQ, endpoints and source topics to the catalogue's configs", async () => {
  const prefix = `${uniqueName('ntcfg')}.`;
  const expected = new Map<string, TopicClassName>([
    ...RETRY_TIERS.map((tier) => [retryTopic(prefix, tier), 'notifierRetry'] as const),
    [prefix + Topics.webhookDeliveriesDlq, 'webhookDeliveriesDlq'],
    [prefix + NOTIFIER_ENDPOINTS_TOPIC, 'notifierEndpoints'],
    [prefix + NotifierTopics.deliveries, 'notifierDeliveries'],
    [prefix + NotifierTopics.endpointHealth, 'notifierEndpointHealth'],
    ...Object.values(sourceTopics(prefix)).map((topic) => [topic, 'canonical'] as const),
  ]);
  await ensureTopics(kafka, [
    ...[...expected.keys()]
      .filter(
        (topic) =>
          topic !== prefix + NOTIFIER_ENDPOINTS_TOPIC && topic !== prefix + NotifierTopics.endpointHealth,
      )
      .map((topic) => ({ topic, numPartitions: 1 })),
    ...[NOTIFIER_ENDPOINTS_TOPIC, NotifierTopics.endpointHealth].map((topic) => ({
      topic: prefix + topic,
      numPartitions: 1,
      configEntries: [{ name: 'cleanup.policy', value: 'compact' }],
    })),
  ]);

  const notifier = await startNotifier({}, { prefix });
  try {
    const configs = await configsOf([...expected.keys()]);
    for (const [topic, name] of expected) {
      const wanted = Object.fromEntries(topicConfigEntries(name).map((e) => [e.name, e.value]));
      expect({ topic, configs: configs.get(topic) }).toMatchObject({ topic, configs: wanted });
    }
  } finally {
    await notifier.stop();
  }
});
