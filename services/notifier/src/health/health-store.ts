import type { Kafka } from 'kafkajs';
import { topicConfigEntries } from '@ampflow/contracts';
import { createCompactedTable, type CompactedTable, type ReliableProducer } from '@ampflow/kafka';
import type { Logger } from '@ampflow/observability';
import { CLOSED_CIRCUIT, type CircuitState } from '../delivery/circuit-breaker';

/**
 * Each endpoint's health (its circuit and the "failing since" clock of the 5-day rule) for the whole deployment.
 * Only the instance that holds an endpoint's deliveries partition changes it (one partition, one instance), so
 * there is one writer per endpoint at a time; every instance reads the compacted topic whole, so whoever takes
 * the partition next (a restart, a rebalance) goes on from the same state.
 *
 * `get` answers from memory at once: the last state this instance set (until its write is read back), else the
 * table's. `set` writes in the background, latest state per endpoint wins: a burst of failures writes a few
 * records, not one per failure. A write that fails is tried again until it is read back or superseded.
 */
export interface HealthStore {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** True once the topic has been read up to where it was at start. */
  ready(): boolean;
  get(endpointId: string): CircuitState;
  set(endpointId: string, state: CircuitState): void;
  /** Forgets an endpoint's health (re-enabled, new URL, deleted): writes a tombstone when there is something to forget. */
  reset(endpointId: string): void;
  /** Endpoints whose circuit is not closed, over the whole deployment (the same figure on every instance). */
  openCircuits(): number;
  /** Resolves once every state set so far is written (or given up at stop). */
  flush(): Promise<void>;
}

/** The part of a {@link CompactedTable} the store uses (an in-memory one stands in for it in unit tests). */
export type HealthTable = Pick<
  CompactedTable<CircuitState>,
  'start' | 'stop' | 'get' | 'entries' | 'put' | 'delete' | 'caughtUp'
>;

/** True when two states say the same (a decoded state is a new object, so identity does not tell). */
export function sameHealth(a: CircuitState, b: CircuitState): boolean {
  return (
    a.status === b.status &&
    a.consecutiveFailures === b.consecutiveFailures &&
    a.openedAt === b.openedAt &&
    a.probeStartedAt === b.probeStartedAt &&
    a.failingSince === b.failingSince
  );
}

const isClosed = (state: CircuitState) => sameHealth(state, CLOSED_CIRCUIT);

const nullableNumber = (value: unknown): number | null => (typeof value === 'number' ? value : null);

export function encodeHealth(state: CircuitState): Buffer {
  return Buffer.from(JSON.stringify({ v: 1, ...state }));
}

/** Throws on anything that is not a health record (the table skips it and keeps the previous value). */
export function decodeHealth(value: Buffer): CircuitState {
  const parsed = JSON.parse(value.toString('utf8')) as Partial<CircuitState> & { v?: number };
  if (
    parsed.v !== 1 ||
    (parsed.status !== 'closed' && parsed.status !== 'open' && parsed.status !== 'half_open') ||
    typeof parsed.consecutiveFailures !== 'number'
  ) {
    throw new Error('not an endpoint health record (version 1)');
  }
  return {
    status: parsed.status,
    consecutiveFailures: parsed.consecutiveFailures,
    openedAt: nullableNumber(parsed.openedAt),
    probeStartedAt: nullableNumber(parsed.probeStartedAt),
    failingSince: nullableNumber(parsed.failingSince),
  };
}

export function createHealthStore(options: {
  kafka: Kafka;
  /** Connected and disconnected by the caller. */
  producer: ReliableProducer;
  /** `${KAFKA_TOPIC_PREFIX}ampflow.notifier.endpoint-health`; created compacted when missing. */
  topic: string;
  logger: Logger;
  onFatal: (error: unknown) => void;
}): HealthStore {
  const table = createCompactedTable<CircuitState>({
    kafka: options.kafka,
    topic: options.topic,
    topicConfig: topicConfigEntries('notifierEndpointHealth'),
    logger: options.logger,
    producer: options.producer,
    encode: encodeHealth,
    decode: decodeHealth,
    onFatal: options.onFatal,
  });
  return createHealthStoreOn(table, { logger: options.logger });
}

/** The store's logic over any {@link HealthTable}. */
export function createHealthStoreOn(
  table: HealthTable,
  options: { logger: Logger; retryDelayMs?: number },
): HealthStore {
  const log = options.logger.child({ component: 'health-store' });
  /** States set here and not yet read back: `undefined` is a reset (tombstone). */
  const local = new Map<string, CircuitState | undefined>();
  /** Endpoints with a write in flight (at most one each; a newer state waits for it, then goes). */
  const writing = new Map<string, Promise<void>>();
  let stopped = false;

  function write(endpointId: string): void {
    if (writing.has(endpointId) || stopped) return;
    const run = (async () => {
      let failures = 0;
      while (local.has(endpointId) && !stopped) {
        const state = local.get(endpointId);
        try {
          if (state === undefined) await table.delete(endpointId);
          else await table.put(endpointId, state);
          failures = 0;
          // Read back: the table holds it now, unless a newer state was set meanwhile (then write that).
          if (local.get(endpointId) === state) local.delete(endpointId);
        } catch (error) {
          failures += 1;
          if (failures === 1 || failures % 20 === 0)
            log.warn({ err: error, endpointId }, 'endpoint health not written; retrying');
          await new Promise((resolve) => setTimeout(resolve, options.retryDelayMs ?? 1_000).unref());
        }
      }
    })().finally(() => {
      writing.delete(endpointId);
      // A state set after the loop's last look.
      if (local.has(endpointId)) write(endpointId);
    });
    writing.set(endpointId, run);
  }

  const get = (endpointId: string): CircuitState => {
    if (local.has(endpointId)) return local.get(endpointId) ?? CLOSED_CIRCUIT;
    return table.get(endpointId) ?? CLOSED_CIRCUIT;
  };

  return {
    start: () => table.start(),
    async stop() {
      // What is being written gets its chance (bounded by the table's write timeout); then reading stops.
      await Promise.allSettled([...writing.values()]);
      stopped = true;
      await table.stop();
    },
    ready: () => table.caughtUp(),
    get,
    set(endpointId, state) {
      if (sameHealth(get(endpointId), state)) return;
      local.set(endpointId, state);
      write(endpointId);
    },
    reset(endpointId) {
      if (isClosed(get(endpointId)) && table.get(endpointId) === undefined) return;
      local.set(endpointId, undefined);
      write(endpointId);
    },
    openCircuits() {
      let open = 0;
      const seen = new Set<string>();
      for (const [id, state] of local) {
        seen.add(id);
        if (state && state.status !== 'closed') open += 1;
      }
      for (const [id, state] of table.entries()) {
        if (!seen.has(id) && state.status !== 'closed') open += 1;
      }
      return open;
    },
    async flush() {
      while (writing.size > 0) await Promise.allSettled([...writing.values()]);
    },
  };
}
