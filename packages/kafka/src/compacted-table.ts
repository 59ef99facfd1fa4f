import { randomBytes, randomUUID } from 'node:crypto';
import { ConfigResourceTypes, type Consumer, type IHeaders, type Kafka } from 'kafkajs';
import type { Logger } from '@ampflow/observability';
import { AppError, DependencyError, ValidationError, withTimeout } from '@ampflow/runtime';
import type { ReliableProducer } from './producer';
import {
  ensureTopics,
  fetchTopicOffsetsWhenReady,
  subscribeWhenReady,
  type TopicConfigEntry,
} from './topics-admin';

/** Header that carries a write's id, so the writer knows when its own reader has applied that write. */
export const TABLE_WRITE_ID_HEADER = 'table-write-id';

/** One change to a table's map. `value` is undefined when the key was deleted (a tombstone). */
export interface TableChange<V> {
  key: string;
  value: V | undefined;
  previous: V | undefined;
}

/** What one record did to the map. */
export type TableUpdate<V> =
  | { kind: 'set'; change: TableChange<V> }
  | { kind: 'delete'; change: TableChange<V> }
  /** A tombstone for a key the map does not hold: nothing changed. */
  | { kind: 'noop' }
  /** A record without a key, or one whose value `decode` refused: the map is left as it was. */
  | { kind: 'skipped'; reason: 'no_key' | 'undecodable'; error?: unknown };

/**
 * Applies one record of a compacted topic to `state`, latest record per key wins: a value sets the key, a null
 * value (tombstone) removes it. A record that does not decode is skipped and the key keeps its previous value,
 * so one bad record never takes the rest of the table down with it.
 */
export function applyTableRecord<V>(
  state: Map<string, V>,
  record: { key: Buffer | null; value: Buffer | null },
  decode: (value: Buffer) => V,
): TableUpdate<V> {
  if (record.key === null) return { kind: 'skipped', reason: 'no_key' };
  const key = record.key.toString('utf8');
  const previous = state.get(key);
  if (record.value === null) {
    if (!state.has(key)) return { kind: 'noop' };
    state.delete(key);
    return { kind: 'delete', change: { key, value: undefined, previous } };
  }
  let value: V;
  try {
    value = decode(record.value);
  } catch (error) {
    return { kind: 'skipped', reason: 'undecodable', error };
  }
  state.set(key, value);
  return { kind: 'set', change: { key, value, previous } };
}

/**
 * True once every partition has been read up to its target: `targets` holds, per partition, the high watermark
 * observed at start (the offset after the last record then); `positions` the offset after the last record read.
 * Partitions that were empty at start are simply absent from `targets`.
 */
export function isCaughtUp(
  targets: ReadonlyMap<number, number>,
  positions: ReadonlyMap<number, number>,
): boolean {
  for (const [partition, target] of targets) {
    if ((positions.get(partition) ?? 0) < target) return false;
  }
  return true;
}

/**
 * The partitions that have something to read at start, with their high watermarks. A partition whose high
 * watermark equals its log start offset is empty (or was emptied by retention) and is never waited on.
 */
export function readTargets(
  offsets: Array<{ partition: number; high: string; low: string }>,
): Map<number, number> {
  const targets = new Map<number, number>();
  for (const { partition, high, low } of offsets) {
    if (Number(high) > Number(low)) targets.set(partition, Number(high));
  }
  return targets;
}

export interface CompactedTableOptions<V> {
  kafka: Kafka;
  /** The compacted topic that holds the table; created, or corrected, with `topicConfig`. */
  topic: string;
  logger: Logger;
  /** Turns a record value into `V`; a throw makes the record skipped (logged and counted), not fatal. */
  decode(value: Buffer): V;
  encode(value: V): Buffer;
  /** Writes `put` and `delete` records (`acks=-1`). The caller connects and disconnects it. */
  producer: ReliableProducer;
  /**
   * Partitions of the topic when it is created (default 1, so every write is in one total order). Each key
   * keeps its partition (the default partitioner hashes the key), so per-key order holds with more.
   */
  partitions?: number;
  /** Replication factor when the topic is created (default: the broker's `default.replication.factor`). */
  replicationFactor?: number;
  /**
   * Topic-level configs the topic is created with and an existing one is corrected to (`ensureTopics`); default
   * only `cleanup.policy=compact`. Services pass their class of the catalogue (`topicConfigEntries`).
   */
  topicConfig?: TopicConfigEntry[];
  /**
   * How long `put` and `delete` wait for the broker's acknowledgement plus this instance's reader applying the
   * record, before rejecting with a retriable {@link DependencyError} `table_write_timeout` (default 10 s).
   */
  writeTimeoutMs?: number;
  /** Bound on deleting the throwaway consumer group at `stop` (default 5 s); a failure is only logged. */
  groupCleanupTimeoutMs?: number;
  /**
   * Called when the reader cannot go on by itself (kafkajs gave up on its consumer without a restart): the
   * table would silently go stale, so services stop and exit non-zero for their supervisor to restart them.
   */
  onFatal: (error: unknown) => void;
}

export interface CompactedTable<V> {
  /**
   * Creates the topic if missing and corrects its configs (`topicConfig`), checks it is compacted, notes the high watermarks
   * and starts reading from the beginning. Resolves once reading started, not once caught up: see `caughtUp`.
   * A table starts once; build a new one to read again.
   */
  start(): Promise<void>;
  /** Stops reading, rejects writes still waiting, and deletes the throwaway consumer group. */
  stop(): Promise<void>;
  get(key: string): V | undefined;
  entries(): IterableIterator<[string, V]>;
  values(): IterableIterator<V>;
  readonly size: number;
  /** Records skipped since start: no key, or a value `decode` refused. */
  readonly skippedRecords: number;
  /**
   * True once the table has read every partition up to the high watermark observed at `start`; stays true.
   * Before that the map is a partial, older view. Service readiness waits on this.
   */
  caughtUp(): boolean;
  /**
   * Writes `key = value` and resolves once this instance's reader has applied it, so `get(key)` afterwards
   * returns `value` here (read-your-writes); other instances see it once their readers get there. Rejects
   * with a retriable {@link DependencyError} when the broker does not acknowledge or the record is not read
   * back within `writeTimeoutMs`. The outcome of a rejected write is unknown: the producer may still deliver
   * it later, and then every instance applies it, the writer included. Retrying the same write is safe.
   */
  put(key: string, value: V): Promise<void>;
  /** Writes a tombstone for `key`, with the semantics of `put`: afterwards `get(key)` is undefined here. */
  delete(key: string): Promise<void>;
  /**
   * Calls `listener` for every change the reader applies, from the initial read on, in topic order, including
   * other instances' writes. Listener errors are logged and swallowed. Returns a function that unsubscribes.
   */
  onChange(listener: (change: TableChange<V>) => void): () => void;
}

interface PendingWrite {
  resolve: () => void;
  reject: (error: unknown) => void;
}

function headerString(headers: IHeaders | undefined, name: string): string | undefined {
  const value = headers?.[name];
  if (value === undefined) return undefined;
  return (Array.isArray(value) ? value[0] : value)?.toString();
}

/**
 * A key-value table that every instance keeps whole in memory, read from a compacted topic from the beginning,
 * as Kafka Connect keeps its config topic and Kafka Streams its GlobalKTable. Writes go to the topic and come
 * back through the reader, so every instance applies the same records in the same (per-partition) order.
 *
 * The reader is a consumer in a group of its own (`<topic>-reader-<random>`) that never commits. kafkajs 2.2.4
 * has no manual partition assignment, so a group is the only way to consume; being its only member it gets every
 * partition. With no committed offsets every start (and every restart of the process) reads the topic from the
 * beginning, which is what a table needs; and the broker drops an empty group without offsets at its next
 * cleanup (`offsets.retention.check.interval.ms`, 10 min), so groups of crashed instances do not pile up
 * (`stop` deletes its group straight away). When kafkajs
 * restarts a crashed consumer it too starts over from the beginning; records already applied are recognised
 * by offset and skipped, so listeners see each change once.
 */
export function createCompactedTable<V>(options: CompactedTableOptions<V>): CompactedTable<V> {
  const { kafka, topic, producer } = options;
  const writeTimeoutMs = options.writeTimeoutMs ?? 10_000;
  const groupId = `${topic}-reader-${randomBytes(6).toString('hex')}`;
  const log = options.logger.child({ component: 'compacted-table', topic, groupId });

  const state = new Map<string, V>();
  /** Per partition, the offset after the last record applied: a replay below it is skipped. */
  const positions = new Map<number, number>();
  let targets: Map<number, number> | undefined;
  let caughtUp = false;
  let skippedRecords = 0;
  const pending = new Map<string, PendingWrite>();
  const listeners = new Set<(change: TableChange<V>) => void>();
  let consumer: Consumer | undefined;
  let phase: 'new' | 'starting' | 'running' | 'stopped' = 'new';
  let starting: Promise<void> | undefined;

  function advance(partition: number, nextOffset: number): void {
    if (nextOffset > (positions.get(partition) ?? 0)) positions.set(partition, nextOffset);
    checkCaughtUp();
  }

  function checkCaughtUp(): void {
    if (!caughtUp && targets && isCaughtUp(targets, positions)) {
      caughtUp = true;
      log.info({ size: state.size, skippedRecords }, 'table caught up with the topic');
    }
  }

  function apply(
    partition: number,
    message: { offset: string; key: Buffer | null; value: Buffer | null; headers?: IHeaders },
  ): void {
    const offset = Number(message.offset);
    if (offset < (positions.get(partition) ?? 0)) return;
    const update = applyTableRecord(state, message, options.decode);
    const writeId = headerString(message.headers, TABLE_WRITE_ID_HEADER);
    const waiter = writeId === undefined ? undefined : pending.get(writeId);
    if (update.kind === 'skipped') {
      skippedRecords += 1;
      log.warn(
        { err: update.error, partition, offset: message.offset, reason: update.reason, skippedRecords },
        'skipping a table record',
      );
      waiter?.reject(
        new ValidationError(
          'table_record_skipped',
          `${topic}: the written record was skipped (${update.reason})`,
          {
            cause: update.error,
          },
        ),
      );
    } else {
      if (update.kind !== 'noop') {
        for (const listener of listeners) {
          try {
            listener(update.change);
          } catch (err) {
            log.error({ err, partition, offset: message.offset }, 'a table listener threw');
          }
        }
      }
      waiter?.resolve();
    }
    advance(partition, offset + 1);
  }

  async function fetchTargets(): Promise<Map<number, number>> {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const { resources } = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['cleanup.policy'] }],
      });
      const policy = resources[0]?.configEntries.find((e) => e.configName === 'cleanup.policy')?.configValue;
      // A table on a topic that deletes old records would lose keys that were not written for a while.
      if (!policy?.split(',').includes('compact')) {
        throw new AppError(
          'table_topic_not_compacted',
          `${topic} has cleanup.policy=${policy ?? 'unknown'}; a table needs compact`,
          false,
          500,
        );
      }
      return readTargets(await fetchTopicOffsetsWhenReady(admin, topic));
    } finally {
      await admin.disconnect();
    }
  }

  async function deleteGroup(): Promise<void> {
    const admin = kafka.admin({ retry: { retries: 2 } });
    try {
      await withTimeout(
        admin.connect().then(() => admin.deleteGroups([groupId])),
        options.groupCleanupTimeoutMs ?? 5_000,
        'kafka_unavailable',
        'the reader group was not deleted',
      );
    } catch (err) {
      // The broker drops an empty group without offsets by itself later; this only saves it the wait.
      log.warn({ err }, 'could not delete the table reader group');
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  async function write(key: string, value: Buffer | null): Promise<void> {
    if (phase !== 'running')
      throw new DependencyError('table_not_running', `${topic}: the table is not running`);
    const writeId = randomUUID();
    const seen = new Promise<void>((resolve, reject) => pending.set(writeId, { resolve, reject }));
    // The reader may settle `seen` before the broker's acknowledgement arrives; nobody awaits it until then.
    seen.catch(() => undefined);
    try {
      await withTimeout(
        producer
          .send(topic, [{ key, value, headers: { [TABLE_WRITE_ID_HEADER]: writeId } }])
          .then(() => seen),
        writeTimeoutMs,
        'table_write_timeout',
        `${topic}: the write was not acknowledged and read back`,
      );
    } finally {
      pending.delete(writeId);
    }
  }

  async function startReading(): Promise<void> {
    await ensureTopics(
      kafka,
      [
        {
          topic,
          numPartitions: options.partitions ?? 1,
          replicationFactor: options.replicationFactor,
          configEntries: options.topicConfig ?? [{ name: 'cleanup.policy', value: 'compact' }],
        },
      ],
      { logger: log },
    );
    targets = await fetchTargets();
    log.info({ targets: Object.fromEntries(targets) }, 'reading the table from the beginning');
    checkCaughtUp();
    const reader = kafka.consumer({
      groupId,
      // Bounds an idle fetch; a fetch returns as soon as a record arrives, so writes are read back at once. An
      // idle table costs one fetch and one heartbeat (kafkajs heartbeats after a fetch) per 2 s: 500 ms and 1 s
      // made the notifier's two tables most of its idle CPU.
      maxWaitTimeInMs: 2_000,
      // After kafkajs restarts a consumer that lost the broker, the new member's join waits until the old
      // member's session expires (it could not leave): the session timeout is how long a table stays behind
      // after an outage. 6 s is the broker's default minimum; heartbeats go every 2 s (three per session).
      sessionTimeout: 6_000,
      heartbeatInterval: 2_000,
      allowAutoTopicCreation: false,
      retry: { retries: 10, initialRetryTime: 300, maxRetryTime: 10_000 },
    });
    consumer = reader;
    reader.on(reader.events.CRASH, (event) => {
      const { error, restart } = event.payload;
      if (restart) {
        log.warn({ err: error }, 'table reader crashed; kafkajs restarts it');
        return;
      }
      log.error({ err: error }, 'table reader crashed and will not restart');
      if (phase !== 'stopped') options.onFatal(error);
    });
    // Offsets that hold no record for us (control records, records before the fetched offset) still move
    // the position, or a table could wait forever on an offset no record will ever carry. kafkajs hands
    // batches made only of those to no handler, but reports them with this event.
    reader.on(reader.events.END_BATCH_PROCESS, ({ payload }) => {
      if (payload.topic === topic && payload.batchSize === 0)
        advance(payload.partition, Number(payload.lastOffset) + 1);
    });
    await reader.connect();
    await subscribeWhenReady(reader, { topics: [topic], fromBeginning: true });
    await reader.run({
      autoCommit: false,
      eachBatch: async ({ batch, isRunning, isStale, heartbeat }) => {
        for (const message of batch.messages) {
          if (!isRunning() || isStale()) return;
          apply(batch.partition, message);
        }
        // Only once every record of the batch is applied: a replay after a crash skips what is below this.
        advance(batch.partition, Number(batch.lastOffset()) + 1);
        await heartbeat();
      },
    });
    if (phase === 'starting') phase = 'running';
  }

  return {
    async start() {
      if (phase !== 'new') throw new Error(`the table on ${topic} was already started`);
      phase = 'starting';
      starting = startReading();
      return starting;
    },
    async stop() {
      const wasStarted = phase !== 'new';
      phase = 'stopped';
      for (const waiter of pending.values())
        waiter.reject(new DependencyError('table_stopped', `${topic}: the table is stopping`));
      pending.clear();
      if (!wasStarted) return;
      // A stop during start waits for it, so that no consumer is left behind running.
      await starting?.catch(() => undefined);
      await consumer?.disconnect();
      if (consumer) await deleteGroup();
    },
    get: (key) => state.get(key),
    entries: () => state.entries(),
    values: () => state.values(),
    get size() {
      return state.size;
    },
    get skippedRecords() {
      return skippedRecords;
    },
    caughtUp: () => caughtUp,
    put: async (key, value) => write(key, options.encode(value)),
    delete: (key) => write(key, null),
    onChange(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
  };
}
