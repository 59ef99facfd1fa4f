'use strict';

/** Redis helpers of the benches. */
const Redis = require('ioredis');

/** SCAN + DEL of `<namespace>:*`; returns how many keys went. */
async function deleteRedisNamespace(url, namespace) {
  if (!/^bench:/.test(namespace))
    throw new Error(`refusing to delete Redis keys outside bench:*: ${namespace}`);
  const redis = new Redis(url, { lazyConnect: true });
  await redis.connect();
  let deleted = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1_000);
      cursor = next;
      if (keys.length > 0) deleted += await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    await redis.quit();
  }
  return deleted;
}

module.exports = { deleteRedisNamespace };
