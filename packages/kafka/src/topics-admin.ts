import type { Consumer, Kafka } from 'kafkajs';
import { createRetryPolicy, retry } from '@ampflow/runtime';

/** kafkajs marks the errors worth another try (a broker or a topic's metadata not there yet) as `retriable`. */
const isRetriableKafkaError = (error: unknown) => (error as { retriable?: boolean }).retriable === true;

export interface TopicSpec {
  topic: string;
  numPartitions?: number;
  replicationFactor?: number;
  configEntries?: { name: string; value: string }[];
}

/**
 * Creates the topics that do not exist yet (existing ones are left as they are) and waits until the broker
 * serves their metadata.
 */
export async function ensureTopics(kafka: Kafka, topics: TopicSpec[]): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t.topic));
    if (missing.length === 0) return;
    try {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((t) => ({
          topic: t.topic,
          numPartitions: t.numPartitions ?? 6,
          replicationFactor: t.replicationFactor ?? -1,
          configEntries: t.configEntries ?? [],
        })),
      });
    } catch (err) {
      const type = (err as { type?: string }).type;
      // Another instance created one meanwhile, or kafkajs's leader wait saw the topic before its metadata
      // reached the broker (UNKNOWN_TOPIC_OR_PARTITION on a fresh cluster): both are settled below.
      if (type !== 'TOPIC_ALREADY_EXISTS' && type !== 'UNKNOWN_TOPIC_OR_PARTITION') throw err;
    }
    const names = missing.map((t) => t.topic);
    // About 3 s of waiting in all, as the fixed 100 ms x 30 it replaces.
    const policy = createRetryPolicy({ baseDelayMs: 100, maxDelayMs: 200, maxAttempts: 30 });
    await retry(() => admin.fetchTopicMetadata({ topics: names }), {
      policy,
      shouldRetry: isRetriableKafkaError,
    });
  } finally {
    await admin.disconnect();
  }
}

/**
 * Subscribes, retrying while the broker does not know a topic's partitions yet: right after a topic is
 * created its metadata takes a moment to reach every listener (`UNKNOWN_TOPIC_OR_PARTITION` is retriable).
 */
export async function subscribeWhenReady(
  consumer: Consumer,
  subscription: { topics: string[]; fromBeginning: boolean },
  attempts = 20,
): Promise<void> {
  // With 20 attempts about 15 s of waiting in all, as the linear 100 ms..1 s steps it replaces.
  const policy = createRetryPolicy({ baseDelayMs: 100, maxDelayMs: 2_000, maxAttempts: attempts });
  await retry(() => consumer.subscribe(subscription), { policy, shouldRetry: isRetriableKafkaError });
}
