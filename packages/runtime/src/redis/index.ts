/**
 * `@ampflow/runtime/redis`: the one way services and tools connect to Redis, a single server or a Redis Cluster
 * (`REDIS_URL`, parsed by `parseRedisUrl` in @ampflow/config), and the helpers that keep multi-key work
 * within hash slots on a cluster while sending exactly what they sent before to a single server.
 */
import { createHash } from 'node:crypto';
import calculateSlot from 'cluster-key-slot';
import { Cluster, Command, Redis, type ChainableCommander, type RedisOptions } from 'ioredis';
import { parseRedisUrl } from '@ampflow/config';

/** A connection to Redis: one server, or a Redis Cluster. Both have the same commands. */
export type RedisClient = Redis | Cluster;

/** The options services give their client (those of one connection; on a cluster, of every node's). */
export type RedisClientOptions = Pick<
  RedisOptions,
  | 'lazyConnect'
  | 'enableAutoPipelining'
  | 'enableOfflineQueue'
  | 'maxRetriesPerRequest'
  | 'commandTimeout'
  | 'connectTimeout'
  | 'retryStrategy'
>;

/**
 * A client for `url`: `new Redis(url, options)` for one server, as before; for a cluster
 * (`redis+cluster://host:port,host:port`, or `redis://` naming several nodes) an ioredis `Cluster` seeded with
 * those nodes, with the same options: the connection ones for every node, `retryStrategy` for reconnecting
 * both the cluster and each node (a master that restarts keeps its slots: no redirect would make the client
 * reconnect to it otherwise). Throws on a URL `parseRedisUrl` refuses.
 */
export function createRedisClient(url: string, options: RedisClientOptions = {}): RedisClient {
  const target = parseRedisUrl(url);
  if (target.mode === 'single') return new Redis(target.url, options);
  const { lazyConnect, enableAutoPipelining, enableOfflineQueue, retryStrategy, ...connection } = options;
  const retry = retryStrategy ?? ((times: number) => Math.min(100 + times * 200, 2_000));
  return new Cluster(target.nodes, {
    lazyConnect,
    enableAutoPipelining,
    enableOfflineQueue,
    clusterRetryStrategy: retry,
    clusterNodeRetryStrategy: retry,
    redisOptions: {
      ...connection,
      ...(target.username !== undefined && { username: target.username }),
      ...(target.password !== undefined && { password: target.password }),
      ...(target.tls && { tls: {} }),
    },
  });
}

export function isCluster(client: RedisClient): client is Cluster {
  return client instanceof Cluster;
}

/** The hash slot (0..16383) of a key (its `{hash tag}` when it has one). */
export function slotOf(key: string): number {
  return calculateSlot(key);
}

/** Positions of `keys` grouped by hash slot, in first-seen order (a key's positions in their order). */
export function groupBySlot(keys: readonly string[]): Map<number, number[]> {
  const groups = new Map<number, number[]>();
  keys.forEach((key, i) => {
    const slot = calculateSlot(key);
    const group = groups.get(slot);
    if (group) group.push(i);
    else groups.set(slot, [i]);
  });
  return groups;
}

/**
 * The positions of `items` to send together: all of them in one group on a single server (one command, as
 * before), per hash slot of `keyOf(item)` on a cluster (a command's keys must share a slot there).
 */
export function partitionForCommands<T>(
  client: RedisClient,
  items: readonly T[],
  keyOf: (item: T) => string,
): T[][] {
  if (!isCluster(client) || items.length === 0) return items.length === 0 ? [] : [[...items]];
  const groups = groupBySlot(items.map(keyOf));
  return [...groups.values()].map((positions) => positions.map((i) => items[i]!));
}

/**
 * A pipeline for commands over keys of any slots. On a single server it is `client.pipeline()`. On a cluster,
 * where one ioredis pipeline must stay on one node, the commands are sent as one pipeline per node (in
 * parallel), each command's replies put back in the order the commands were added, so that `exec()` answers
 * as one pipeline would; the commands of a key stay in their order (a key's commands go to one node). A
 * command that cannot be sent (its node unreachable) answers with its error. Each command's own keys must
 * share one slot (a multi-key command split by the caller: {@link partitionForCommands}).
 */
export function slotPipeline(client: RedisClient): ChainableCommander {
  if (!isCluster(client)) return client.pipeline();
  const commands: Array<[name: string, args: unknown[]]> = [];
  const proxy: ChainableCommander = new Proxy({} as ChainableCommander, {
    get(_target, property) {
      if (property === 'length') return commands.length;
      if (property === 'exec') return () => execOnCluster(client, commands);
      if (property === 'then') return undefined;
      if (typeof property !== 'string') return undefined;
      return (...args: unknown[]) => {
        commands.push([property, args]);
        return proxy;
      };
    },
  });
  return proxy;
}

type Replies = Array<[Error | null, unknown]>;

async function execOnCluster(cluster: Cluster, commands: Array<[string, unknown[]]>): Promise<Replies> {
  const replies: Replies = new Array(commands.length);
  const byNode = new Map<string, number[]>();
  commands.forEach(([name, args], i) => {
    const slot = new Command(name, args as string[]).getSlot();
    // Keyless commands go with the first group; a slot not mapped yet (before the first connect) on its own.
    const node = slot === null ? '' : (cluster.slots[slot]?.[0] ?? `slot ${slot}`);
    const group = byNode.get(node);
    if (group) group.push(i);
    else byNode.set(node, [i]);
  });
  await Promise.all(
    [...byNode.values()].map(async (positions) => {
      try {
        const result = await cluster
          .pipeline(positions.map((i) => [commands[i]![0], ...commands[i]![1]]))
          .exec();
        positions.forEach((i, k) => {
          replies[i] = (result?.[k] as [Error | null, unknown] | undefined) ?? [
            new Error('no reply from the pipeline'),
            null,
          ];
        });
      } catch (error) {
        const failure = error instanceof Error ? error : new Error(String(error));
        for (const i of positions) replies[i] = [failure, null];
      }
    }),
  );
  return replies;
}

/**
 * `MGET keys` on a single server (one command); on a cluster one MGET per hash slot, in one pipeline per node,
 * the values put back in the order of `keys`. Rejects with the first error.
 */
export async function mget(client: RedisClient, keys: readonly string[]): Promise<Array<string | null>> {
  if (keys.length === 0) return [];
  if (!isCluster(client)) return client.mget(keys as string[]);
  const groups = [...groupBySlot(keys).values()];
  const pipeline = slotPipeline(client);
  for (const positions of groups) pipeline.mget(positions.map((i) => keys[i]!));
  const replies = (await pipeline.exec()) ?? [];
  const values: Array<string | null> = new Array(keys.length);
  groups.forEach((positions, g) => {
    const [error, value] = replies[g] ?? [new Error('no reply to MGET'), null];
    if (error) throw error;
    const found = value as Array<string | null>;
    positions.forEach((i, k) => (values[i] = found[k] ?? null));
  });
  return values;
}

/**
 * Hash tags `{...}` that spread `count` groups of keys evenly over the cluster's 16,384 slots: tag `i` hashes
 * into the `i`-th of `count` equal slot ranges (a cluster splits slots in ranges among its masters). The
 * same tags every time (found by counting up), so every instance and version agrees on them.
 */
export function spreadHashTags(count: number, prefix = 's'): string[] {
  const tags: string[] = [];
  const width = 16_384 / count;
  for (let i = 0; i < count; i++) {
    for (let n = 0; ; n++) {
      const tag = n === 0 ? `${prefix}${i}` : `${prefix}${i}.${n}`;
      const slot = calculateSlot(tag);
      if (slot >= Math.floor(i * width) && slot < Math.floor((i + 1) * width)) {
        tags.push(tag);
        break;
      }
    }
  }
  return tags;
}

/**
 * A Lua script called with its number of keys first (`(numberOfKeys, ...keys, ...args)`): EVALSHA, and EVAL
 * when the server does not have it yet (NOSCRIPT: first use, a restart, SCRIPT FLUSH), which loads it. What
 * `defineCommand` does without a fixed key count, except that ioredis's auto-pipelining on a cluster would
 * route such a command by its first argument (the key count), not by its first key: EVALSHA is routed by its
 * keys.
 */
export function defineScript(
  client: RedisClient,
  lua: string,
): (numberOfKeys: number, ...keysAndArgs: Array<string | number>) => Promise<unknown> {
  const sha = createHash('sha1').update(lua).digest('hex');
  return async (numberOfKeys, ...keysAndArgs) => {
    try {
      return await client.evalsha(sha, numberOfKeys, ...keysAndArgs);
    } catch (error) {
      if (!String((error as Error)?.message).startsWith('NOSCRIPT')) throw error;
      return client.eval(lua, numberOfKeys, ...keysAndArgs);
    }
  };
}
