import Redis from 'ioredis';
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
  url: string;
  ttlSeconds: number;
  /** Key prefix; tests give each run its own. */
  namespace?: string;
  /** Bound on one Redis command, so a hung Redis cannot hold webhook requests. */
  commandTimeoutMs?: number;
}

export function createRedisSeenStore(options: RedisSeenStoreOptions): SeenStore {
  const namespace = options.namespace ?? 'ampflow:ingress';
  const redis = new Redis(options.url, {
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
  return {
    connect: () => redis.connect(),
    async isSeen(provider, eventId) {
      return (await redis.exists(key(provider, eventId))) === 1;
    },
    async markSeen(provider, eventId) {
      await redis.set(key(provider, eventId), '1', 'EX', options.ttlSeconds, 'NX');
    },
    isConnected: () => redis.status === 'ready',
    async close() {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
