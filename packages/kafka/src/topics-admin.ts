import { ConfigResourceTypes, ConfigSource, type Admin, type Consumer, type Kafka } from 'kafkajs';
import type { Logger } from '@ampflow/observability';
import { createRetryPolicy, retry } from '@ampflow/runtime';

/** kafkajs marks the errors worth another try (a broker or a topic's metadata not there yet) as `retriable`. */
const isRetriableKafkaError = (error: unknown) => (error as { retriable?: boolean }).retriable === true;

export interface TopicConfigEntry {
  name: string;
  value: string;
}

export interface TopicSpec {
  topic: string;
  numPartitions?: number;
  replicationFactor?: number;
  /**
   * Topic-level configs (the catalogue's, `topicConfigEntries` in @ampflow/contracts): set when the topic is
   * created, and on an existing topic changed to these values where they differ.
   */
  configEntries?: TopicConfigEntry[];
  /**
   * false when another service owns the topic's configs (the normalizer creates the raw topics if it starts
   * first; the ingress owns their retention): they are then applied only when this call creates the topic.
   * Default true.
   */
  correctExisting?: boolean;
}

/** A topic's configs as DescribeConfigs reports them. */
export interface DescribedConfigEntry {
  configName: string;
  configValue: string | null;
  configSource: number;
  isSensitive: boolean;
}

export interface ConfigCorrection {
  /** The values that differ from the wanted ones (`from` null: the broker reported none). */
  changes: { name: string; from: string | null; to: string }[];
  /**
   * Every topic-level value to send with AlterConfigs: the legacy request kafkajs speaks replaces all of a
   * topic's own values, so those set on it that are not corrected (e.g. `min.insync.replicas`) go along unchanged.
   */
  configEntries: TopicConfigEntry[];
}

/** What AlterConfigs must send so the topic holds `wanted`; undefined when it already does. */
export function configCorrection(
  described: readonly DescribedConfigEntry[],
  wanted: readonly TopicConfigEntry[],
): ConfigCorrection | undefined {
  const current = new Map(described.map((e) => [e.configName, e.configValue]));
  const changes = wanted
    .filter((w) => current.get(w.name) !== w.value)
    .map((w) => ({ name: w.name, from: current.get(w.name) ?? null, to: w.value }));
  if (changes.length === 0) return undefined;
  const wantedNames = new Set(wanted.map((w) => w.name));
  const kept = described
    .filter(
      (e) =>
        e.configSource === ConfigSource.TOPIC_CONFIG &&
        !e.isSensitive &&
        e.configValue !== null &&
        !wantedNames.has(e.configName),
    )
    .map((e) => ({ name: e.configName, value: e.configValue! }));
  return { changes, configEntries: [...kept, ...wanted] };
}

/** Gives every topic of `specs` its `configEntries` where they differ, logging each change. */
async function correctConfigs(admin: Admin, specs: readonly TopicSpec[], logger: Logger | undefined) {
  const wantedOf = new Map(specs.map((s) => [s.topic, s.configEntries ?? []]));
  const policy = createRetryPolicy({ baseDelayMs: 100, maxDelayMs: 500, maxAttempts: 10 });
  const { resources } = await retry(
    () =>
      admin.describeConfigs({
        includeSynonyms: false,
        resources: specs.map((s) => ({ type: ConfigResourceTypes.TOPIC, name: s.topic })),
      }),
    { policy, shouldRetry: isRetriableKafkaError },
  );
  for (const resource of resources) {
    const correction = configCorrection(resource.configEntries, wantedOf.get(resource.resourceName) ?? []);
    if (!correction) continue;
    await admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: ConfigResourceTypes.TOPIC,
          name: resource.resourceName,
          configEntries: correction.configEntries,
        },
      ],
    });
    logger?.warn(
      { topic: resource.resourceName, changes: correction.changes },
      'topic configs differed from the catalogue and were changed',
    );
  }
}

/**
 * Creates the topics that do not exist yet with their `configEntries`, waits until the broker serves their
 * metadata, and changes the configs of the others where they differ (see {@link TopicSpec.correctExisting}).
 * Idempotent: a second call changes nothing. `logger` is told of every change to an existing topic.
 */
export async function ensureTopics(
  kafka: Kafka,
  topics: TopicSpec[],
  options: { logger?: Logger } = {},
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t.topic));
    if (missing.length > 0) {
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
    }
    // The topics just created too: another instance may have created one meanwhile with other values.
    const toCorrect = topics.filter((t) => (t.configEntries?.length ?? 0) > 0 && t.correctExisting !== false);
    if (toCorrect.length > 0) await correctConfigs(admin, toCorrect, options.logger);
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
  await retry(() => consumer.subscribe(subscription), {
    policy: topicReadyPolicy(attempts),
    shouldRetry: isRetriableKafkaError,
  });
}

/**
 * A topic's offsets, retrying while its partitions have no leader yet (`NOT_LEADER_FOR_PARTITION`, retriable):
 * right after the topic is created, kafkajs's own quick retries can all fall before the leader is elected.
 */
export async function fetchTopicOffsetsWhenReady(
  admin: Admin,
  topic: string,
  attempts = 20,
): ReturnType<Admin['fetchTopicOffsets']> {
  return retry(() => admin.fetchTopicOffsets(topic), {
    policy: topicReadyPolicy(attempts),
    shouldRetry: isRetriableKafkaError,
  });
}

/** With 20 attempts about 15 s of waiting in all. */
function topicReadyPolicy(attempts: number) {
  return createRetryPolicy({ baseDelayMs: 100, maxDelayMs: 2_000, maxAttempts: attempts });
}
