import { Cluster, Redis } from 'ioredis';
import {
  createRedisClient,
  groupBySlot,
  isCluster,
  partitionForCommands,
  slotOf,
  slotPipeline,
  spreadHashTags,
} from './index';

// lazyConnect: nothing here opens a connection.
const clients: Array<Redis | Cluster> = [];
const client = (url: string) => {
  const c = createRedisClient(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  clients.push(c);
  return c;
};
afterAll(() => clients.forEach((c) => c.disconnect()));

describe('createRedisClient', () => {
  it('makes a Redis for one server and a Cluster for a cluster URL, with the options on every node', () => {
    const single = client('redis://127.0.0.1:6390/1');
    expect(single).toBeInstanceOf(Redis);
    expect(isCluster(single)).toBe(false);
    expect((single as Redis).options.db).toBe(1);
    const cluster = client('redis+cluster://u:pw@127.0.0.1:7000,127.0.0.1:7001');
    expect(cluster).toBeInstanceOf(Cluster);
    expect(isCluster(cluster)).toBe(true);
    expect((cluster as Cluster).options.redisOptions).toMatchObject({
      username: 'u',
      password: 'pw',
      maxRetriesPerRequest: 1,
    });
    expect((cluster as Cluster).options.lazyConnect).toBe(true);
  });

  it('refuses a URL it cannot read', () => {
    expect(() => createRedisClient('redis+cluster://a:1,b:2/4')).toThrow(/only database 0/);
  });
});

describe('slot grouping', () => {
  it('groups positions by hash slot, keys with the same hash tag together', () => {
    const keys = ['a', '{v1}:x', 'b', '{v1}:y', 'a'];
    const groups = groupBySlot(keys);
    expect(groups.get(slotOf('{v1}'))).toEqual([1, 3]);
    expect(groups.get(slotOf('a'))).toEqual([0, 4]);
    expect(groups.get(slotOf('b'))).toEqual([2]);
    expect([...groups.values()].flat().sort()).toEqual([0, 1, 2, 3, 4]);
  });

  it('keeps one group on a single server (one command) and splits by slot on a cluster', () => {
    const items = ['k1', 'k2', '{t}1', '{t}2', 'k3'];
    expect(partitionForCommands(client('redis://127.0.0.1:6390'), items, (k) => k)).toEqual([items]);
    const parts = partitionForCommands(client('redis+cluster://127.0.0.1:7000'), items, (k) => k);
    expect(parts).toContainEqual(['{t}1', '{t}2']);
    for (const part of parts) expect(new Set(part.map(slotOf)).size).toBe(1);
    expect(parts.flat().sort()).toEqual([...items].sort());
    expect(partitionForCommands(client('redis://127.0.0.1:6390'), [], (k: string) => k)).toEqual([]);
  });

  it('spreads hash tags one per equal slot range, the same every time', () => {
    const tags = spreadHashTags(64);
    expect(tags).toHaveLength(64);
    tags.forEach((tag, i) => {
      expect(slotOf(tag)).toBeGreaterThanOrEqual(i * 256);
      expect(slotOf(tag)).toBeLessThan((i + 1) * 256);
    });
    expect(spreadHashTags(64)).toEqual(tags);
  });
});

describe('slotPipeline', () => {
  it('is the client’s own pipeline on a single server', () => {
    const single = client('redis://127.0.0.1:6390');
    expect(slotPipeline(single).constructor.name).toBe('Pipeline');
  });

  it('records commands in order on a cluster, chainable, counting them', () => {
    const pipeline = slotPipeline(client('redis+cluster://127.0.0.1:7000'));
    pipeline.set('a', '1').get('b');
    pipeline.mget('{t}1', '{t}2');
    expect(pipeline.length).toBe(3);
  });
});
