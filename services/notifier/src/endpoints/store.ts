import type { Kafka } from 'kafkajs';
import { topicConfigEntries } from '@ampflow/contracts';
import {
  createCompactedTable,
  type CompactedTable,
  type ReliableProducer,
  type TableChange,
} from '@ampflow/kafka';
import type { Logger } from '@ampflow/observability';
import {
  EndpointNotFoundError,
  applyPatch,
  createEndpointSchema,
  generateEndpointId,
  generateSecret,
  newEndpoint,
  parseOrThrow,
  updateEndpointSchema,
  withDisabled,
  withRotatedSecret,
  type CreateEndpointInput,
  type Endpoint,
  type UpdateEndpointInput,
} from './model';
import { createEndpointCodec, type EndpointCodec } from './endpoint-codec';
import type { SecretBox } from './secret-box';

/** One change to the set of endpoints: `before` absent for a creation, `after` absent for a deletion. */
export interface EndpointChange {
  id: string;
  before?: Endpoint;
  after?: Endpoint;
}

/**
 * Every endpoint, read whole into memory from a compacted topic (the source of truth; Redis holds none of it).
 * Writes resolve once this instance has read them back, so `get` right after a write sees it. Other instances
 * see each write once their reader gets there, and report it through `onChange`.
 */
export interface EndpointStore {
  start(): Promise<void>;
  stop(): Promise<void>;
  /**
   * True once the topic has been read up to where it was at start and the records found there not sealed with
   * the current key were rewritten (see {@link EndpointStoreBehaviour.staleSecrets}); before that `list` may
   * miss endpoints.
   */
  ready(): boolean;
  get(id: string): Endpoint | undefined;
  /** Sorted by `createdAt`, then `id`. */
  list(): Endpoint[];
  /** Validates `input` (400 `invalid_request`), checks the URL, generates the id and (unless given) the secret. */
  create(input: CreateEndpointInput, nowMs: number): Promise<Endpoint>;
  /** Throws {@link EndpointNotFoundError} (404) when missing. An empty patch writes nothing. */
  update(id: string, patch: UpdateEndpointInput, nowMs: number): Promise<Endpoint>;
  /** False when there was no such endpoint. */
  remove(id: string): Promise<boolean>;
  /** New current secret; the old one becomes `previous` with `rotatedAt = nowMs`. 404 when missing. */
  rotateSecret(id: string, nowMs: number): Promise<Endpoint>;
  /**
   * Disables an enabled endpoint for `reason`. Resolves with the disabled endpoint when this call disabled it,
   * and undefined when nothing changed (no such endpoint, or already disabled: its first reason is kept).
   */
  disable(id: string, reason: 'endpoint_gone' | 'failing', nowMs: number): Promise<Endpoint | undefined>;
  /**
   * Every change applied, this instance's writes and other instances' alike, from the initial read on (so a
   * listener added before `start` sees every endpoint as a creation). Returns an unsubscribe function.
   */
  onChange(listener: (change: EndpointChange) => void): () => void;
}

/** The part of a {@link CompactedTable} the store uses (an in-memory one stands in for it in unit tests). */
export type EndpointTable = Pick<
  CompactedTable<Endpoint>,
  'start' | 'stop' | 'get' | 'values' | 'put' | 'delete' | 'caughtUp' | 'onChange'
>;

export interface EndpointStoreBehaviour {
  /**
   * Refuses a URL the notifier will never deliver to (scheme, literal address outside the allowed networks) by
   * throwing a ValidationError; the app builds it on `checkEndpointUrl`. Host names are resolved only at
   * connect time, by the sender's guarded lookup.
   */
  checkUrl?: (url: string) => void;
  /**
   * Which stored records are not sealed with the current NOTIFIER_SECRETS_KEY (plain text from before
   * encryption at rest, or the previous key): once caught up at start, the store rewrites each of them (the
   * write seals with the current key) before it reports ready. Nothing is rewritten while any record was
   * undecodable (its key would be rewritten with an older value). A failed rewrite is logged and ends the
   * pass; the record stays readable and the next start tries again. Absent: nothing is rewritten.
   */
  secretsAtRest?: Pick<EndpointCodec, 'staleIds' | 'undecodableRecords'>;
  logger: Logger;
}

export interface EndpointStoreOptions extends EndpointStoreBehaviour {
  kafka: Kafka;
  /** Connected and disconnected by the caller. */
  producer: ReliableProducer;
  /** `${KAFKA_TOPIC_PREFIX}ampflow.notifier.endpoints`; created compacted when missing. */
  topic: string;
  /** Seals endpoint secrets in every record written, opens them in every record read (`endpoint-codec`). */
  secretBox: SecretBox;
  /** Called when the topic reader dies for good; the service exits and is restarted. */
  onFatal: (error: unknown) => void;
  /** How long a write waits for the broker and the read-back before a retriable 503 (default 10 s). */
  writeTimeoutMs?: number;
}

export function createEndpointStore(options: EndpointStoreOptions): EndpointStore {
  const codec = createEndpointCodec(options.secretBox);
  const table = createCompactedTable<Endpoint>({
    kafka: options.kafka,
    topic: options.topic,
    topicConfig: topicConfigEntries('notifierEndpoints'),
    logger: options.logger,
    producer: options.producer,
    encode: codec.encode,
    decode: codec.decode,
    onFatal: options.onFatal,
    writeTimeoutMs: options.writeTimeoutMs,
  });
  return createEndpointStoreOn(table, { ...options, secretsAtRest: codec });
}

/** The store's logic over any {@link EndpointTable}. */
export function createEndpointStoreOn(
  table: EndpointTable,
  behaviour: EndpointStoreBehaviour,
): EndpointStore {
  const log = behaviour.logger.child({ component: 'endpoint-store' });
  /** Per id, the tail of its chain of writes: writes to one id run one after the other. */
  const chains = new Map<string, Promise<unknown>>();

  function serialized<T>(id: string, work: () => Promise<T>): Promise<T> {
    const previous = chains.get(id) ?? Promise.resolve();
    const result = previous.then(work, work);
    const tail = result.catch(() => undefined);
    chains.set(id, tail);
    void tail.then(() => {
      if (chains.get(id) === tail) chains.delete(id);
    });
    return result;
  }

  function existing(id: string): Endpoint {
    const endpoint = table.get(id);
    if (!endpoint) throw new EndpointNotFoundError(id);
    return endpoint;
  }

  const checkUrl = (url: string) => behaviour.checkUrl?.(url);
  const staleSecrets = () => behaviour.secretsAtRest?.staleIds() ?? new Set<string>();
  const undecodableRecords = () => behaviour.secretsAtRest?.undecodableRecords() ?? 0;
  let stopped = false;
  /** The start-up rewrite of records not sealed with the current key has finished (or had nothing to do). */
  let resealed = false;

  /**
   * Once caught up, rewrites every endpoint whose record is not sealed with the current key. Synchronous up to
   * its first write, so a store with nothing to rewrite is ready as soon as its table is.
   */
  async function resealWhenCaughtUp(): Promise<void> {
    while (!table.caughtUp()) {
      if (stopped) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    let rewritten = 0;
    try {
      for (const id of [...staleSecrets()]) {
        if (stopped) return;
        if (undecodableRecords() > 0) {
          log.warn(
            { undecodableRecords: undecodableRecords(), left: staleSecrets().size },
            'not re-encrypting endpoint secrets: some records could not be read (see "skipping a table record"), and a rewrite could put an older version back',
          );
          return;
        }
        const done = await serialized(id, async () => {
          const endpoint = table.get(id);
          // Deleted, or rewritten by a write that came in meanwhile.
          if (!endpoint || !staleSecrets().has(id)) return false;
          await table.put(id, endpoint);
          return true;
        });
        if (done) rewritten += 1;
      }
      if (rewritten > 0)
        log.info({ endpoints: rewritten }, 'endpoint secrets re-encrypted with the current key');
    } catch (err) {
      log.warn(
        { err, rewritten, left: staleSecrets().size },
        'could not re-encrypt every endpoint secret with the current key; they stay readable, the next start tries again',
      );
    } finally {
      resealed = true;
    }
  }

  return {
    async start() {
      await table.start();
      void resealWhenCaughtUp();
    },
    async stop() {
      stopped = true;
      await table.stop();
    },
    ready: () => table.caughtUp() && resealed,
    get: (id) => table.get(id),
    list: () =>
      [...table.values()].sort((a, b) =>
        a.createdAt === b.createdAt
          ? a.id < b.id
            ? -1
            : a.id > b.id
              ? 1
              : 0
          : a.createdAt < b.createdAt
            ? -1
            : 1,
      ),

    async create(input, nowMs) {
      const valid = parseOrThrow(createEndpointSchema, input);
      checkUrl(valid.url);
      const endpoint = newEndpoint(valid, generateEndpointId(), nowMs);
      await serialized(endpoint.id, () => table.put(endpoint.id, endpoint));
      log.info({ endpointId: endpoint.id }, 'endpoint created');
      return table.get(endpoint.id) ?? endpoint;
    },

    async update(id, patch, nowMs) {
      const valid = parseOrThrow(updateEndpointSchema, patch);
      if (valid.url !== undefined) checkUrl(valid.url);
      return serialized(id, async () => {
        const current = existing(id);
        if (Object.values(valid).every((value) => value === undefined)) return current;
        const next = applyPatch(current, valid, nowMs);
        await table.put(id, next);
        log.info({ endpointId: id, fields: Object.keys(valid) }, 'endpoint updated');
        return table.get(id) ?? next;
      });
    },

    remove(id) {
      return serialized(id, async () => {
        if (!table.get(id)) return false;
        await table.delete(id);
        log.info({ endpointId: id }, 'endpoint deleted');
        return true;
      });
    },

    rotateSecret(id, nowMs) {
      return serialized(id, async () => {
        const next = withRotatedSecret(existing(id), generateSecret(), nowMs);
        await table.put(id, next);
        log.info({ endpointId: id }, 'endpoint secret rotated');
        return table.get(id) ?? next;
      });
    },

    disable(id, reason, nowMs) {
      return serialized(id, async () => {
        const current = table.get(id);
        if (!current || !current.enabled) return undefined;
        const next = withDisabled(current, reason, nowMs);
        await table.put(id, next);
        log.warn({ endpointId: id, reason }, 'endpoint disabled');
        return table.get(id) ?? next;
      });
    },

    onChange(listener) {
      return table.onChange((change: TableChange<Endpoint>) =>
        listener({
          id: change.key,
          ...(change.previous !== undefined && { before: change.previous }),
          ...(change.value !== undefined && { after: change.value }),
        }),
      );
    },
  };
}

/**
 * A {@link EndpointTable} in memory, for unit tests of code that needs an endpoint store (no Kafka).
 * Writes apply at once and notify listeners synchronously; it is always caught up after `start`.
 */
export function createMemoryEndpointTable(initial: readonly Endpoint[] = []): EndpointTable {
  const state = new Map(initial.map((e) => [e.id, e] as const));
  const listeners = new Set<(change: TableChange<Endpoint>) => void>();
  let started = false;
  const emit = (change: TableChange<Endpoint>) => {
    for (const listener of listeners) listener(change);
  };
  return {
    async start() {
      started = true;
      for (const [key, value] of state) emit({ key, value, previous: undefined });
    },
    async stop() {
      started = false;
    },
    caughtUp: () => started,
    get: (key) => state.get(key),
    values: () => state.values(),
    async put(key, value) {
      const previous = state.get(key);
      // A copy, as a real table decodes its own: callers cannot change a stored endpoint behind its back.
      const stored = structuredClone(value);
      state.set(key, stored);
      emit({ key, value: stored, previous });
    },
    async delete(key) {
      const previous = state.get(key);
      if (!state.delete(key)) return;
      emit({ key, value: undefined, previous });
    },
    onChange(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
  };
}
