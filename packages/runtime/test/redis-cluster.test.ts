import { startRedisCluster, type RedisClusterProcess } from '@ampflow/testing';
import { createRedisClient, defineScript, mget, slotOf, slotPipeline, type RedisClient } from '../src/redis';

/**
 * The Redis helpers on a real three-master Redis Cluster of this test's own (never the shared Redis): keys of
 * every master in one `mget` and one `slotPipeline`, replies in the order asked, and a master restarted empty.
 */
jest.setTimeout(90_000);

let cluster: RedisClusterProcess;
let redis: RedisClient;
beforeAll(async () => {
  cluster = await startRedisCluster();
  redis = createRedisClient(cluster.url, { lazyConnect: true, maxRetriesPerRequest: 3 });
  await redis.connect();
}, 60_000);
afterAll(async () => {
  redis?.disconnect();
  await cluster?.stop();
});

const keys = Array.from({ length: 60 }, (_, i) => `rt:key:${i}`);
const mastersOf = (list: string[]) => new Set(list.map((k) => cluster.masterOfSlot(slotOf(k))));

describe('Redis helpers on a Redis Cluster', () => {
  it('writes and reads keys of every master in one pipeline and one mget, in order', async () => {
    expect(mastersOf(keys).size).toBe(3);
    const pipeline = slotPipeline(redis);
    keys.forEach((key, i) => pipeline.set(key, `v${i}`).incr(`${key}:n`));
    expect(pipeline.length).toBe(120);
    const replies = (await pipeline.exec())!;
    expect(replies).toEqual(
      keys.flatMap(() => [
        [null, 'OK'],
        [null, 1],
      ]),
    );
    expect(await mget(redis, [...keys, 'rt:missing', keys[0]!])).toEqual([
      ...keys.map((_, i) => `v${i}`),
      null,
      'v0',
    ]);
  });

  it('runs a script per slot, loading it where it is missing', async () => {
    const script = defineScript(redis, "return redis.call('GET', KEYS[1]) .. ARGV[1]");
    expect(await Promise.all(keys.slice(0, 6).map((key) => script(1, key, '!')))).toEqual(
      keys.slice(0, 6).map((_, i) => `v${i}!`),
    );
  });

  it('answers again after a master is killed and restarted empty, without its keys', async () => {
    const lost = keys.filter((key) => cluster.masterOfSlot(slotOf(key)) === 2);
    await cluster.restartEmpty(2);
    expect(await cluster.dbsize(2)).toBe(0);
    let values: Array<string | null> = [];
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        values = await mget(redis, keys);
        break;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    keys.forEach((key, i) => expect([key, values[i]]).toEqual([key, lost.includes(key) ? null : `v${i}`]));
    // The script cache went with it: loaded again on first use.
    const script = defineScript(redis, "return redis.call('GET', KEYS[1]) .. ARGV[1]");
    const kept = keys.find((key) => !lost.includes(key))!;
    await redis.set(lost[0]!, 'back');
    expect(await script(1, lost[0]!, '?')).toBe('back?');
    expect(await script(1, kept, '?')).toBe(`v${keys.indexOf(kept)}?`);
  });
});
