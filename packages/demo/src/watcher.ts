import type { Consumer, Kafka } from 'kafkajs';
import { Topics, type CanonicalTopic, type ChargingSession } from '@ampflow/contracts';
import { subscribeWhenReady, type AvroCodec } from '@ampflow/kafka';
import { ValidationError } from '@ampflow/runtime';
import type { SeenRecord } from './outcome';

/** The topics the demo reads: the four canonical record streams and the sessions. */
export const WATCHED_TOPICS: readonly CanonicalTopic[] = [
  Topics.deviceLinks,
  Topics.vehicleTelemetry,
  Topics.commandResults,
  Topics.vehicleErrors,
  Topics.chargingSessions,
];

export interface Watcher {
  records: SeenRecord[];
  sessions: ChargingSession[];
  /** Records that could not be decoded (counted, not fatal). */
  undecodable(): number;
  stop(): Promise<void>;
}

export interface WatcherOptions {
  kafka: Kafka;
  codec: AvroCodec;
  topicPrefix: string;
  /** A group of its own: positioned at the topics' current ends, deleted at stop. */
  groupId: string;
  /** Only records with one of these keys (the run's vehicles, users, command targets) are kept. */
  keys: ReadonlySet<string>;
}

/**
 * Reads what is written to the watched topics from now on. The group's offsets are set to the current end
 * offsets before the consumer joins, so nothing written after this call resolves is missed, however long
 * joining the group takes, and nothing older is read.
 */
export async function startWatcher(options: WatcherOptions): Promise<Watcher> {
  const { kafka, codec, topicPrefix, groupId, keys } = options;
  const topicOf = new Map(WATCHED_TOPICS.map((t) => [topicPrefix + t, t]));
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = [...topicOf.keys()].filter((t) => !existing.has(t));
    if (missing.length > 0)
      throw new ValidationError(
        'unknown_topic',
        `topic(s) ${missing.join(', ')} do not exist: are the normalizer and the session aggregator running with the same KAFKA_TOPIC_PREFIX?`,
      );
    for (const topic of topicOf.keys()) {
      const ends = await admin.fetchTopicOffsets(topic);
      await admin.setOffsets({
        groupId,
        topic,
        partitions: ends.map((p) => ({ partition: p.partition, offset: p.high })),
      });
    }
  } catch (err) {
    await admin.disconnect();
    throw err;
  }

  const records: SeenRecord[] = [];
  const sessions: ChargingSession[] = [];
  let undecodable = 0;
  const consumer: Consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 250, allowAutoTopicCreation: false });
  await consumer.connect();
  await subscribeWhenReady(consumer, { topics: [...topicOf.keys()], fromBeginning: false });
  await consumer.run({
    eachMessage: async ({ topic, message }) => {
      const key = message.key?.toString('utf8') ?? '';
      const canonical = topicOf.get(topic);
      if (!canonical || !keys.has(key)) return;
      let value: unknown;
      try {
        value = await codec.decode(message.value);
      } catch {
        undecodable += 1;
        return;
      }
      if (canonical === Topics.chargingSessions) sessions.push(value as ChargingSession);
      else records.push({ topic: canonical, key, eventId: (value as { eventId: string }).eventId, value });
    },
  });
  return {
    records,
    sessions,
    undecodable: () => undecodable,
    async stop() {
      await consumer.disconnect();
      // The group existed only for this run.
      await admin.deleteGroups([groupId]).catch(() => undefined);
      await admin.disconnect();
    },
  };
}
