import type { Consumer, Kafka } from 'kafkajs';

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
    for (let attempt = 1; ; attempt++) {
      try {
        await admin.fetchTopicMetadata({ topics: names });
        return;
      } catch (err) {
        if (!(err as { retriable?: boolean }).retriable || attempt >= 30) throw err;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
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
  for (let attempt = 1; ; attempt++) {
    try {
      await consumer.subscribe(subscription);
      return;
    } catch (err) {
      if (!(err as { retriable?: boolean }).retriable || attempt >= attempts) throw err;
      await new Promise((resolve) => setTimeout(resolve, Math.min(100 * attempt, 1_000)));
    }
  }
}
