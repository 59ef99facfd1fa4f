import pino from 'pino';
import { ConfigResourceTypes, type Kafka } from 'kafkajs';
import { MAX_MESSAGE_BYTES } from '@ampflow/contracts';
import { ensureTopics } from '@ampflow/kafka';
import { createMetricsRegistry } from '@ampflow/observability';
import { testEndpoints, testKafka, uniqueName } from '@ampflow/testing';
import { createIngressApp } from '../src/app';
import { createRedisSeenStore } from '../src/seen-store';

/** The raw archive: the ingress gives the raw topics RAW_RETENTION_MS, on creation and on existing topics. */
jest.setTimeout(120_000);

const NINETY_DAYS_MS = 7_776_000_000;
let kafka: Kafka;

beforeAll(() => {
  kafka = testKafka();
});

async function topicConfig(topic: string): Promise<Record<string, string | null>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }],
    });
    return Object.fromEntries(resources[0]!.configEntries.map((e) => [e.configName, e.configValue]));
  } finally {
    await admin.disconnect();
  }
}

async function startAndStop(topics: { smartcar: string; telematica: string }, rawRetentionMs: number) {
  const app = createIngressApp({
    settings: {
      httpPort: 0,
      httpHost: '127.0.0.1',
      smartcarManagementToken: 'amt',
      telematicaWebhookSecrets: ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'],
      maxBodyBytes: 256 * 1024,
      kafkaPublishTimeoutMs: 5_000,
      rawTopicPartitions: 1,
      rawRetentionMs,
      shutdownDrainMs: 1_000,
      topics,
    },
    kafka,
    seenStore: createRedisSeenStore({
      url: testEndpoints().redisUrl,
      ttlSeconds: 60,
      namespace: uniqueName('seen'),
    }),
    logger: pino({ level: 'silent' }),
    registry: createMetricsRegistry('ingress', { defaultMetrics: false }),
    onFatal: (error) => {
      throw error;
    },
  });
  await app.start();
  await app.stop();
}

describe('raw topic retention', () => {
  it('creates missing raw topics with RAW_RETENTION_MS', async () => {
    const topics = { smartcar: uniqueName('raw-smartcar'), telematica: uniqueName('raw-telematica') };
    await startAndStop(topics, NINETY_DAYS_MS);
    for (const topic of Object.values(topics)) {
      expect(await topicConfig(topic)).toMatchObject({ 'retention.ms': String(NINETY_DAYS_MS) });
    }
  });

  it("changes existing raw topics to RAW_RETENTION_MS and the catalogue's other configs, keeping the rest", async () => {
    const topics = { smartcar: uniqueName('raw-smartcar'), telematica: uniqueName('raw-telematica') };
    await ensureTopics(
      kafka,
      Object.values(topics).map((topic) => ({
        topic,
        numPartitions: 1,
        configEntries: [
          { name: 'retention.ms', value: '2592000000' },
          { name: 'max.message.bytes', value: '2097152' },
          { name: 'segment.ms', value: '3600000' },
        ],
      })),
    );
    await startAndStop(topics, -1);
    for (const topic of Object.values(topics)) {
      expect(await topicConfig(topic)).toMatchObject({
        'cleanup.policy': 'delete',
        'retention.ms': '-1',
        'max.message.bytes': String(MAX_MESSAGE_BYTES),
        'segment.ms': '3600000',
      });
    }
  });
});
