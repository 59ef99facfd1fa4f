import { ConfigResourceTypes, type Kafka } from 'kafkajs';
import type { Logger } from '@ampflow/observability';

/** kafkajs's `ConfigSource.TOPIC_CONFIG`: a value set on the topic itself (not inherited from the broker). */
const TOPIC_CONFIG_SOURCE = 1;

export interface TopicConfigEntry {
  configName: string;
  configValue: string | null;
  configSource: number;
  isSensitive: boolean;
}

/**
 * The complete set of topic-level values to send with AlterConfigs so only `retention.ms` changes: the legacy
 * AlterConfigs request kafkajs speaks replaces every topic-level value, so the ones already set (for example
 * `max.message.bytes`) go along unchanged. Undefined when retention is already `retentionMs`.
 */
export function retentionUpdate(
  entries: readonly TopicConfigEntry[],
  retentionMs: number,
): { from: string | null; configEntries: { name: string; value: string }[] } | undefined {
  const wanted = String(retentionMs);
  const current = entries.find((e) => e.configName === 'retention.ms')?.configValue ?? null;
  if (current === wanted) return undefined;
  const kept = entries
    .filter(
      (e) =>
        e.configSource === TOPIC_CONFIG_SOURCE &&
        !e.isSensitive &&
        e.configValue !== null &&
        e.configName !== 'retention.ms',
    )
    .map((e) => ({ name: e.configName, value: e.configValue! }));
  return { from: current, configEntries: [...kept, { name: 'retention.ms', value: wanted }] };
}

/**
 * Sets `retention.ms` of the raw topics (the archive the normalizer can be replayed from) to `retentionMs`
 * where it differs, logging each change. -1 keeps records forever.
 */
export async function ensureRawRetention(
  kafka: Kafka,
  topics: readonly string[],
  retentionMs: number,
  logger: Logger,
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: topics.map((name) => ({ type: ConfigResourceTypes.TOPIC, name })),
    });
    for (const resource of described.resources) {
      const update = retentionUpdate(resource.configEntries, retentionMs);
      if (!update) continue;
      await admin.alterConfigs({
        validateOnly: false,
        resources: [
          {
            type: ConfigResourceTypes.TOPIC,
            name: resource.resourceName,
            configEntries: update.configEntries,
          },
        ],
      });
      logger.info(
        { topic: resource.resourceName, fromRetentionMs: update.from, retentionMs },
        'raw topic retention changed to RAW_RETENTION_MS',
      );
    }
  } finally {
    await admin.disconnect();
  }
}
