import { randomBytes } from 'node:crypto';
import { ConfigResourceTypes, Kafka, logLevel, type Consumer, type KafkaMessage } from 'kafkajs';
import { ensureTopics, subscribeWhenReady } from '@ampflow/kafka';
import { testEndpoints } from './env';

/** A name no other test (or earlier run) uses: `<prefix>-<time>-<random>`. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

/** A kafkajs client for the infrastructure under test, quiet unless something is wrong. */
export function testKafka(clientId = uniqueName('test')): Kafka {
  return new Kafka({
    clientId,
    brokers: testEndpoints().kafkaBrokers,
    logLevel: logLevel.ERROR,
    retry: { retries: 5, initialRetryTime: 100 },
  });
}

export function createTopics(kafka: Kafka, topics: string[], numPartitions = 3): Promise<void> {
  return ensureTopics(
    kafka,
    topics.map((topic) => ({ topic, numPartitions, replicationFactor: 1 })),
  );
}

export interface CollectedRecord {
  topic: string;
  partition: number;
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string>;
  offset: string;
  message: KafkaMessage;
}

function headersToStrings(message: KafkaMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    if (value === undefined) continue;
    out[name] = Array.isArray(value) ? value.map(String).join(',') : String(value);
  }
  return out;
}

export interface RecordCollector {
  /** Every record seen so far. */
  readonly records: CollectedRecord[];
  /** Resolves with the first `count` records, or rejects after `timeoutMs` saying how many arrived. */
  waitFor(count: number, timeoutMs?: number): Promise<CollectedRecord[]>;
  stop(): Promise<void>;
}

/**
 * Reads `topics` from the beginning with a fresh consumer group and keeps what arrives, so a test can wait
 * for records and also check that no more than expected arrived.
 */
export async function collectRecords(kafka: Kafka, topics: string[]): Promise<RecordCollector> {
  const consumer: Consumer = kafka.consumer({ groupId: uniqueName('collector'), maxWaitTimeInMs: 100 });
  const records: CollectedRecord[] = [];
  const waiters: Array<() => void> = [];
  await consumer.connect();
  await subscribeWhenReady(consumer, { topics, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ topic, partition, message }) => {
      records.push({
        topic,
        partition,
        key: message.key?.toString() ?? null,
        value: message.value,
        headers: headersToStrings(message),
        offset: message.offset,
        message,
      });
      for (const wake of waiters.splice(0)) wake();
    },
  });
  return {
    records,
    waitFor(count, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(
            new Error(
              `expected ${count} records on ${topics.join(', ')} within ${timeoutMs} ms, got ${records.length}`,
            ),
          );
        }, timeoutMs);
        const check = () => {
          if (records.length >= count) {
            clearTimeout(timer);
            resolve(records.slice(0, count));
          } else {
            waiters.push(check);
          }
        };
        check();
      });
    },
    stop: () => consumer.disconnect(),
  };
}

/** Waits until `predicate` holds, polling every `intervalMs`; rejects with `description` after `timeoutMs`. */
export async function eventually(
  predicate: () => boolean | Promise<boolean>,
  description: string,
  timeoutMs = 20_000,
  intervalMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * Lowers `topic`'s `max.message.bytes` to `bytes`, keeping its other topic-level configs (AlterConfigs replaces
 * them all), and waits until the broker reports it. For tests of records too large for their topic: done after
 * the service started, since a service gives the topics it creates the catalogue's configs and corrects an
 * existing topic's at start.
 */
export async function lowerMaxMessageBytes(kafka: Kafka, topic: string, bytes: number): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const read = async () =>
      (
        await admin.describeConfigs({
          includeSynonyms: false,
          resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }],
        })
      ).resources[0]?.configEntries ?? [];
    const kept = (await read())
      .filter((e) => e.configSource === 1 && !e.isSensitive && e.configName !== 'max.message.bytes')
      .map((e) => ({ name: e.configName, value: e.configValue }));
    await admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: ConfigResourceTypes.TOPIC,
          name: topic,
          configEntries: [...kept, { name: 'max.message.bytes', value: String(bytes) }],
        },
      ],
    });
    await eventually(
      async () =>
        (await read()).some((e) => e.configName === 'max.message.bytes' && e.configValue === String(bytes)),
      `max.message.bytes of ${topic} to read ${bytes}`,
    );
  } finally {
    await admin.disconnect();
  }
}
