import Redis from 'ioredis';
import { testEndpoints, uniqueName } from '@ampflow/testing';
import { createRedisSeenStore, type SeenStore } from '../src/seen-store';

describe('Redis seen store (real Redis)', () => {
  let probe: Redis;
  const stores: SeenStore[] = [];
  const open = async (markDelayMs: number) => {
    const namespace = uniqueName('seen');
    const store = createRedisSeenStore({
      url: testEndpoints().redisUrl,
      ttlSeconds: 60,
      namespace,
      markDelayMs,
    });
    await store.connect();
    stores.push(store);
    return { store, keyOf: (id: string) => `${namespace}:seen:telematica:${id}` };
  };

  beforeAll(() => {
    probe = new Redis(testEndpoints().redisUrl);
  });
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await probe.quit();
  });

  it('writes a mark with the next duplicate check, and resolves it only once it is in Redis', async () => {
    const { store, keyOf } = await open(60_000);
    let marked = false;
    const mark = store.markSeen('telematica', 'a').then(() => (marked = true));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(marked).toBe(false);
    expect(await probe.exists(keyOf('a'))).toBe(0);
    // The check of another id carries the waiting mark; a check of the marked id itself sees it.
    expect(await store.isSeen('telematica', 'b')).toBe(false);
    await mark;
    expect(await probe.exists(keyOf('a'))).toBe(1);
    expect(await probe.ttl(keyOf('a'))).toBeGreaterThan(0);
    expect(await store.isSeen('telematica', 'a')).toBe(true);
  });

  it('checks an id against its own waiting mark in the same pipeline', async () => {
    const { store } = await open(60_000);
    const mark = store.markSeen('telematica', 'c');
    expect(await store.isSeen('telematica', 'c')).toBe(true);
    await mark;
  });

  it('writes a mark after markDelayMs without any check', async () => {
    const { store, keyOf } = await open(20);
    await store.markSeen('telematica', 'd');
    expect(await probe.exists(keyOf('d'))).toBe(1);
  });

  it('writes waiting marks on close', async () => {
    const { store, keyOf } = await open(60_000);
    const mark = store.markSeen('telematica', 'e');
    await store.close();
    await mark;
    expect(await probe.exists(keyOf('e'))).toBe(1);
  });
});
