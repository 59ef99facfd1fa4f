import { ConfigResourceTypes, type Admin, type IHeaders, type Kafka, type Message } from 'kafkajs';

/** Kafka's default `message.max.bytes` (and so every topic's `max.message.bytes` unless overridden). */
export const KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588;

/**
 * Bytes of a record batch besides its records (v2 format: 61) plus room for the produce request's own framing,
 * so that a request holding `limit - REQUEST_HEADROOM_BYTES` of records is never refused as too large.
 */
export const REQUEST_HEADROOM_BYTES = 512;

function headerBytes(headers: IHeaders | undefined): number {
  let bytes = 0;
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value])
      bytes += 10 + Buffer.byteLength(name) + byteLength(v);
  }
  return bytes;
}

function byteLength(value: Buffer | string | null | undefined): number {
  if (value === null || value === undefined) return 0;
  return typeof value === 'string' ? Buffer.byteLength(value) : value.length;
}

/**
 * An upper bound on the bytes one record takes inside an uncompressed record batch: key, value and headers
 * plus the largest varint framing a record can have (21 bytes). Used to keep requests under the broker's limit.
 */
export function recordBytes(message: Message): number {
  return 21 + byteLength(message.key) + byteLength(message.value) + headerBytes(message.headers);
}

/**
 * Reads a topic's effective `max.message.bytes` (its override, or the broker's `message.max.bytes`): the
 * largest record batch the broker appends to it. Resolves to Kafka's default when the broker does not say.
 */
export async function readTopicMaxMessageBytes(admin: Admin, topic: string): Promise<number> {
  const { resources } = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['max.message.bytes'] }],
  });
  const entry = resources[0]?.configEntries.find((e) => e.configName === 'max.message.bytes');
  const value = Number(entry?.configValue);
  return Number.isFinite(value) && value > 0 ? value : KAFKA_DEFAULT_MAX_MESSAGE_BYTES;
}

export interface MessageLimits {
  /** The effective `max.message.bytes` of `topic`, cached for `ttlMs`; concurrent callers share one look-up. */
  maxMessageBytes(topic: string): Promise<number>;
  /** Forgets a topic's limit, e.g. after the broker refused a batch as too large. */
  invalidate(topic: string): void;
  close(): Promise<void>;
}

/**
 * Caches topics' `max.message.bytes`. A look-up that fails (broker away, no describe permission) falls back to
 * Kafka's default for a short while rather than blocking sends.
 */
export function createMessageLimits(kafka: Kafka, options: { ttlMs?: number } = {}): MessageLimits {
  const ttlMs = options.ttlMs ?? 5 * 60_000;
  const cache = new Map<string, { value: Promise<number>; expiresAt: number }>();
  let admin: Admin | undefined;
  let connecting: Promise<Admin> | undefined;

  const connected = () => {
    connecting ??= (async () => {
      const a = kafka.admin({ retry: { retries: 2 } });
      await a.connect();
      admin = a;
      return a;
    })().catch((err: unknown) => {
      connecting = undefined;
      throw err;
    });
    return connecting;
  };

  return {
    maxMessageBytes(topic) {
      const hit = cache.get(topic);
      if (hit && hit.expiresAt > Date.now()) return hit.value;
      const value = connected()
        .then((a) => readTopicMaxMessageBytes(a, topic))
        .catch(() => {
          // Retry the look-up soon; meanwhile the default keeps sends going and the broker still has the last word.
          const entry = cache.get(topic);
          if (entry) entry.expiresAt = Date.now() + 5_000;
          return KAFKA_DEFAULT_MAX_MESSAGE_BYTES;
        });
      cache.set(topic, { value, expiresAt: Date.now() + ttlMs });
      return value;
    },
    invalidate: (topic) => void cache.delete(topic),
    async close() {
      await connecting?.catch(() => undefined);
      await admin?.disconnect().catch(() => undefined);
    },
  };
}
