import { createRedisClient } from '@ampflow/runtime/redis';
import type { Provider } from '@ampflow/contracts';

/** Remembers which provider event ids are already on Kafka (DESIGN.md: Redis `SET NX`, 7-day TTL). */
export interface SeenStore {
  connect(): Promise<void>;
  isSeen(provider: Provider, eventId: string): Promise<boolean>;
  /** Marks an event stored; called only after Kafka acknowledged it. */
  markSeen(provider: Provider, eventId: string): Promise<void>;
  isConnected(): boolean;
  close(): Promise<void>;
}

export interface RedisSeenStoreOptions {
  /** `REDIS_URL`: one server or a Redis Cluster (every command here has one key: any slot will do). */
  url: string;
  ttlSeconds: number;
  /** Key prefix; tests give each run its own. */
  namespace?: string;
  /** Bound on one Redis command, so a hung Redis cannot hold webhook requests. */
  commandTimeoutMs?: number;
  /**
   * Longest a mark waits to share a write with the next duplicate check, in ms (default 50; 0: at once).
   * Marks are written with the next `isSeen` (one socket write and one read for both, as auto-pipelining
   * joins the commands issued in one tick), or when this time is up: at low rates that saves a Redis round
   * trip per webhook. Until its mark lands an id stays in the ingress's in-flight table (raw-publisher.ts),
   * so redeliveries are caught all the same.
   */
  markDelayMs?: number;
}

export function createRedisSeenStore(options: RedisSeenStoreOptions): SeenStore {
  const namespace = options.namespace ?? 'ampflow:ingress';
  const redis = createRedisClient(options.url, {
    lazyConnect: true,
    enableAutoPipelining: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: options.commandTimeoutMs ?? 500,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  });
  redis.on('error', () => {
    // Reported through isConnected() and the callers' error counters; ioredis reconnects by itself.
  });
  const key = (provider: Provider, eventId: string) => `${namespace}:seen:${provider}:${eventId}`;
  const markDelayMs = options.markDelayMs ?? 50;
  /** Marks waiting for the next duplicate check or for `markDelayMs`. */
  let marks: { key: string; resolve: () => void; reject: (err: unknown) => void }[] = [];
  let markTimer: NodeJS.Timeout | undefined;

  /** Issues the waiting marks now; in the same tick as a check, auto-pipelining sends them in one write. */
  function flushMarks(): Promise<unknown> {
    clearTimeout(markTimer);
    markTimer = undefined;
    const due = marks;
    marks = [];
    return Promise.allSettled(
      due.map((mark) =>
        redis.set(mark.key, '1', 'EX', options.ttlSeconds, 'NX').then(() => mark.resolve(), mark.reject),
      ),
    );
  }

  return {
    connect: () => redis.connect(),
    async isSeen(provider, eventId) {
      if (marks.length > 0) void flushMarks();
      return (await redis.exists(key(provider, eventId))) === 1;
    },
    markSeen(provider, eventId) {
      if (markDelayMs <= 0)
        return redis.set(key(provider, eventId), '1', 'EX', options.ttlSeconds, 'NX').then(() => {});
      return new Promise<void>((resolve, reject) => {
        marks.push({ key: key(provider, eventId), resolve, reject });
        markTimer ??= setTimeout(() => void flushMarks(), markDelayMs);
      });
    },
    isConnected: () => redis.status === 'ready',
    async close() {
      // QUIT would overtake marks still in the auto-pipeline: they are written first.
      await flushMarks();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
