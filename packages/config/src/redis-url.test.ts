import { loadConfig, redisEnv, z } from './index';
import { parseRedisUrl } from './redis-url';

describe('parseRedisUrl', () => {
  it('keeps a one-server URL as it is, database and credentials included', () => {
    for (const url of [
      'redis://localhost:6379',
      'redis://127.0.0.1',
      'rediss://user:secret@redis.internal:6380/2',
      'redis://:secret@host:1/0',
    ])
      expect(parseRedisUrl(url)).toEqual({ mode: 'single', url });
  });

  it('reads a cluster from redis+cluster://, even with one seed node', () => {
    expect(parseRedisUrl('redis+cluster://10.0.0.1:7000,10.0.0.2:7001,redis-3')).toEqual({
      mode: 'cluster',
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
        { host: 'redis-3', port: 6379 },
      ],
      tls: false,
    });
    expect(parseRedisUrl('redis+cluster://seed:7000')).toMatchObject({
      mode: 'cluster',
      nodes: [{ host: 'seed', port: 7000 }],
    });
  });

  it('reads a cluster from a plain URL naming several nodes, with TLS, user and encoded password', () => {
    expect(parseRedisUrl('rediss://app:p%40ss%3Aword@a:7000,[::1]:7001/0')).toEqual({
      mode: 'cluster',
      nodes: [
        { host: 'a', port: 7000 },
        { host: '::1', port: 7001 },
      ],
      tls: true,
      username: 'app',
      password: 'p@ss:word',
    });
    expect(parseRedisUrl('redis://:only-password@a:1,b:2')).toMatchObject({ password: 'only-password' });
    expect(parseRedisUrl('redis://:only-password@a:1,b:2')).not.toHaveProperty('username');
  });

  it('refuses what it cannot read, saying why', () => {
    expect(() => parseRedisUrl('http://localhost:6379')).toThrow(/expected redis:\/\/host:port/);
    expect(() => parseRedisUrl('redis+cluster://')).toThrow(/expected redis/);
    expect(() => parseRedisUrl('redis+cluster://a:7000,b:99999')).toThrow(/port 99999 is out of range/);
    expect(() => parseRedisUrl('redis+cluster://a:7000,b:x')).toThrow(/"b:x" is not a host\[:port\]/);
    expect(() => parseRedisUrl('redis+cluster://a:7000,b:7001/3')).toThrow(/only database 0/);
    expect(() => parseRedisUrl('redis://a:1,b:2?tls=true')).toThrow(/expected redis/);
  });
});

describe('REDIS_URL in a service config', () => {
  const schema = z.object(redisEnv);
  it('accepts both forms and defaults to the local server', () => {
    expect(loadConfig(schema, {}).REDIS_URL).toBe('redis://localhost:6379');
    expect(loadConfig(schema, { REDIS_URL: 'redis+cluster://a:7000,b:7001' }).REDIS_URL).toBe(
      'redis+cluster://a:7000,b:7001',
    );
  });
  it('names the variable and the problem, never the password', () => {
    expect(() => loadConfig(schema, { REDIS_URL: 'rediss+cluster://u:hunter2@a:7000/5' })).toThrow(
      /REDIS_URL: a Redis Cluster has only database 0/,
    );
    let message = '';
    try {
      loadConfig(schema, { REDIS_URL: 'redis://u:hunter2@a:1,b:nope' });
    } catch (error) {
      message = String(error);
    }
    expect(message).toMatch(/REDIS_URL: "b:nope" is not a host/);
    expect(message).not.toContain('hunter2');
  });
});
