import { randomBytes } from 'node:crypto';
import type { Admin, Consumer, IHeaders, Kafka, KafkaMessage } from 'kafkajs';
import { RawHeaders, type ChargingSession } from '@ampflow/contracts';
import { subscribeWhenReady, type AvroCodec } from '@ampflow/kafka';
import type { Logger } from '@ampflow/observability';
import { DependencyError } from '@ampflow/runtime';
import { CONSOLE_INDEX_GROUP_PREFIX } from './pipeline';
import type { SessionStore } from './sessions';
import type { IndexedKind, IndexedRecord, TraceIndex } from './trace-index';
import type { ConsoleTopics } from './topics';

/** Raw bodies are kept up to this size (bytes, 64 KiB); a longer one is cut and marked, to bound memory. */
export const MAX_RAW_BODY_BYTES = 64 * 1024;

/**
 * Estimated cost of holding a record: a fixed part (position, headers, index entries) plus its value, kept as
 * text for raw records (counted twice: two-byte strings) and as a decoded object for Avro records (about four
 * times the Avro bytes, measured on telemetry: 231 bytes decode to about 860 bytes of heap).
 */
export function approxBytes(kind: 'text' | 'avro', valueBytes: number): number {
  return 600 + (kind === 'text' ? 2 : 4) * valueBytes;
}

export interface IndexFeederOptions {
  kafka: Kafka;
  codec: Pick<AvroCodec, 'decode'>;
  topics: ConsoleTopics;
  index: TraceIndex;
  sessions: SessionStore;
  /** Records older than this are not read (ms); the sessions topic is read whole (its own retention). */
  maxAgeMs: number;
  /** How often missing topics are looked for and a crashed consumer rebuilt (ms, default 10 s). */
  recheckMs?: number;
  logger: Logger;
  now?: () => number;
  /** Called after every record read, for the console's metrics. */
  onRecord?: (stream: string) => void;
}

export interface IndexFeeder {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** True while a consumer is reading every watched topic that exists. */
  running(): boolean;
  /**
   * True when the last look found none of the watched topics (a platform that has received nothing yet): nothing
   * to read, which is not a failure; the next look starts reading once one exists.
   */
  waitingForTopics(): boolean;
  /** Watched topics that did not exist at the last look. */
  missingTopics(): string[];
}

function headerStrings(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    out[name] = Array.isArray(value) ? value.map(String).join(',') : String(value);
  }
  return out;
}

/** A raw body as text (parsed when shown); cut at {@link MAX_RAW_BODY_BYTES}. */
function rawBody(value: Buffer | null): string | { truncated: true; bytes: number; text: string } | null {
  if (!value) return null;
  if (value.length > MAX_RAW_BODY_BYTES)
    return {
      truncated: true,
      bytes: value.length,
      text: value.subarray(0, MAX_RAW_BODY_BYTES).toString('utf8'),
    };
  return value.toString('utf8');
}

/** Vehicles a canonical record is about (`vehicleId`, a command's vehicle target, a device link's devices). */
function vehiclesOf(value: Record<string, unknown>): string[] {
  if (typeof value.vehicleId === 'string') return [value.vehicleId];
  if (value.targetType === 'VEHICLE' && typeof value.targetId === 'string') return [value.targetId];
  if (Array.isArray(value.devices))
    return (value.devices as { vehicleId?: unknown }[])
      .map((d) => d.vehicleId)
      .filter((v): v is string => typeof v === 'string');
  return [];
}

/**
 * Fills the trace index and the session store by reading the platform's topics with a consumer of its own:
 * a fresh group (never committed to, deleted at stop) positioned at `now - maxAgeMs` on every topic but the
 * sessions topic, which is read from its start. Nothing it holds needs saving: a restart reads it again.
 * Topics that do not exist yet (the console started before the normalizer) are looked for every `recheckMs`,
 * and the consumer is rebuilt to include them; so is a consumer that crashed for good.
 */
export function createIndexFeeder(options: IndexFeederOptions): IndexFeeder {
  const { kafka, topics, index } = options;
  const now = options.now ?? Date.now;
  const log = options.logger.child({ component: 'trace-index' });
  const raw = new Set(Object.values(topics.raw));
  const deadLetterTopics = new Set(topics.sourceDeadLetters);
  const canonical = new Set([topics.telemetry, topics.commands, topics.deviceLinks, topics.errors]);
  const watched = [...raw, ...canonical, topics.sessions, ...deadLetterTopics];
  let admin: Admin | undefined;
  let consumer: Consumer | undefined;
  let groupId: string | undefined;
  let subscribed = new Set<string>();
  let missing: string[] = watched;
  let isRunning = false;
  let noTopics = false;
  let timer: NodeJS.Timeout | undefined;
  let stopping = false;
  let checking: Promise<void> | undefined;

  async function decodeOrReason(value: Buffer | null): Promise<unknown> {
    try {
      return await options.codec.decode(value);
    } catch (err) {
      // A registry that does not answer is retried (kafkajs reads the batch again); a record that can never
      // be read is kept with the reason.
      if (err instanceof DependencyError) throw err;
      return { undecodable: (err as Error).message };
    }
  }

  async function handle(topic: string, partition: number, message: KafkaMessage) {
    const stream = topics.streamOf(topic) ?? topic;
    const timestampMs = Number(message.timestamp);
    const headers = headerStrings(message.headers);
    const key = message.key?.toString('utf8') ?? null;
    const base = { topic, stream, partition, offset: message.offset, timestampMs, key, headers };
    const young = timestampMs >= now() - options.maxAgeMs;
    const valueBytes = message.value?.length ?? 0;
    const add = (
      kind: IndexedKind,
      traceId: string | null,
      vehicleIds: string[],
      value: unknown,
      text = false,
    ) => {
      if (!young) return;
      const cost = approxBytes(text ? 'text' : 'avro', Math.min(valueBytes, MAX_RAW_BODY_BYTES));
      index.add({ ...base, kind, traceId, vehicleIds, value, approxBytes: cost } satisfies IndexedRecord);
    };
    options.onRecord?.(stream);
    if (topic === topics.sessions) {
      const value = await decodeOrReason(message.value);
      if ((value as { undecodable?: string }).undecodable !== undefined) return;
      const change = value as ChargingSession;
      options.sessions.apply(change);
      add('session', null, [change.vehicleId], change);
      return;
    }
    if (
      raw.has(topic) ||
      (deadLetterTopics.has(topic) && headers[RawHeaders.provider] && !topic.startsWith(topics.telemetry))
    ) {
      const provider = headers[RawHeaders.provider];
      const eventId = headers[RawHeaders.eventId];
      const traceId = provider && eventId ? `${provider}:${eventId}` : null;
      // The raw key is the provider's vehicle id (else a charger or user id): prefixed, the canonical vehicle id.
      const vehicles = provider && key ? [`${provider}:${key}`] : [];
      add(raw.has(topic) ? 'raw' : 'dead-letter', traceId, vehicles, rawBody(message.value), true);
      return;
    }
    const value = await decodeOrReason(message.value);
    const record = (value ?? {}) as Record<string, unknown>;
    const traceId =
      typeof record.eventId === 'string' ? record.eventId : (headers[RawHeaders.eventId] ?? null);
    add(deadLetterTopics.has(topic) ? 'dead-letter' : 'canonical', traceId, vehiclesOf(record), value);
  }

  async function stopConsumer() {
    isRunning = false;
    const c = consumer;
    const g = groupId;
    consumer = undefined;
    groupId = undefined;
    if (c)
      await c.disconnect().catch((err: unknown) => log.warn({ err }, 'index consumer did not disconnect'));
    // The group existed only for this consumer: nothing in it needs keeping.
    if (g && admin) await admin.deleteGroups([g]).catch(() => undefined);
  }

  async function startConsumer(existing: string[]) {
    const group = `${CONSOLE_INDEX_GROUP_PREFIX}${randomBytes(6).toString('hex')}`;
    const from = now() - options.maxAgeMs;
    // Where to start: the offsets of `now - maxAgeMs`, the sessions topic from its start.
    const starts: { topic: string; partitions: { partition: number; offset: string }[] }[] = [];
    for (const topic of existing) {
      const partitions =
        topic === topics.sessions
          ? (await admin!.fetchTopicOffsets(topic)).map((p) => ({ partition: p.partition, offset: p.low }))
          : await admin!.fetchTopicOffsetsByTimestamp(topic, from);
      starts.push({ topic, partitions });
    }
    const c = kafka.consumer({ groupId: group, maxWaitTimeInMs: 250, allowAutoTopicCreation: false });
    c.on(c.events.CRASH, ({ payload }) => {
      log.error({ err: payload.error, restart: payload.restart }, 'index consumer crashed');
      // kafkajs restarts it itself when it can; otherwise the next check rebuilds it.
      if (!payload.restart) isRunning = false;
    });
    consumer = c;
    groupId = group;
    await c.connect();
    await subscribeWhenReady(c, { topics: existing, fromBeginning: true });
    // Positioned by seeking, not with admin.setOffsets before joining: kafkajs's setOffsets joins the group with
    // a consumer of its own and waits for a fetch, about 5 s per topic (45 s for the ten topics). Seeks made
    // right after `run` (which creates the group synchronously) are applied before its first fetch.
    const running = c.run({
      autoCommit: false,
      eachMessage: async ({ topic, partition, message }) => handle(topic, partition, message),
    });
    for (const { topic, partitions } of starts)
      for (const { partition, offset } of partitions) c.seek({ topic, partition, offset });
    await running;
    // Committed once, so a consumer kafkajs restarts after a crash resumes there rather than at the topics'
    // beginning (records read twice are kept once); nothing is committed after.
    await c
      .commitOffsets(starts.flatMap(({ topic, partitions }) => partitions.map((p) => ({ topic, ...p }))))
      .catch((err: unknown) => log.warn({ err }, 'index start offsets not committed'));
    subscribed = new Set(existing);
    isRunning = true;
    log.info({ topics: existing.length, groupId: group, fromMs: from }, 'trace index reading');
  }

  async function check() {
    const existing = new Set(await admin!.listTopics());
    missing = watched.filter((t) => !existing.has(t));
    const present = watched.filter((t) => existing.has(t));
    noTopics = present.length === 0;
    if (noTopics) return;
    const grew = present.some((t) => !subscribed.has(t));
    if (isRunning && !grew) return;
    await stopConsumer();
    if (!stopping) await startConsumer(present);
  }

  function schedule() {
    if (stopping) return;
    timer = setTimeout(() => {
      checking = check()
        .catch((err: unknown) => log.warn({ err }, 'trace index check failed; trying again'))
        .finally(() => {
          checking = undefined;
          schedule();
        });
    }, options.recheckMs ?? 10_000);
  }

  return {
    async start() {
      stopping = false;
      admin = kafka.admin();
      await admin.connect();
      // A topic whose partitions have no leader yet (just created) fails the first look: the next one, in
      // `recheckMs`, tries again; a broker that cannot be reached at all has already failed the connect.
      await check().catch((err: unknown) => log.warn({ err }, 'trace index not reading yet; trying again'));
      schedule();
    },
    async stop() {
      stopping = true;
      clearTimeout(timer);
      await checking;
      await stopConsumer();
      await admin?.disconnect();
      admin = undefined;
    },
    running: () => isRunning,
    waitingForTopics: () => noTopics && !stopping,
    missingTopics: () => missing,
  };
}
