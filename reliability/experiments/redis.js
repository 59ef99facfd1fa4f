'use strict';

/**
 * The suite's redis-server emptied (FLUSHALL) and paused (SIGSTOP, then SIGCONT) while webhooks keep arriving.
 * Redis holds the ingress's dedup marks, the aggregator's working state (refilled from its changelog topic) and
 * the notifier's attempt log and directory; none of it may lose an acknowledged reading or a session change.
 */
const { setTimeout: sleep } = require('node:timers/promises');
const { underLoad } = require('../lib/context');
const { pidListeningOn } = require('../lib/platform');

async function redisFlush(ctx) {
  const seconds = ctx.full ? 60 : 20;
  const rate = 20;
  return underLoad(ctx, {
    name: 'redis-flush',
    vehicles: Math.round((rate * seconds) / 2),
    rate,
    fault: async ({ t0 }) => {
      for (const fraction of ctx.full ? [0.25, 0.5, 0.75] : [0.4]) {
        await sleep(Math.max(0, t0 + seconds * 1000 * fraction - Date.now()));
        ctx.log('redis-flush: FLUSHALL');
        await ctx.infra.redis.flushAll();
      }
      return Date.now();
    },
  });
}

async function redisPause(ctx) {
  const seconds = ctx.full ? 60 : 20;
  const rate = 20;
  return underLoad(ctx, {
    name: 'redis-pause',
    vehicles: Math.round((rate * seconds) / 2),
    rate,
    fault: async ({ t0 }) => {
      await sleep(Math.max(0, t0 + seconds * 250 - Date.now()));
      const pid = pidListeningOn(ctx.infra.redis.port);
      if (!pid) throw new Error(`no process listens on the suite's Redis port ${ctx.infra.redis.port}`);
      ctx.log(`redis-pause: SIGSTOP redis-server (pid ${pid})`);
      process.kill(pid, 'SIGSTOP');
      try {
        await sleep(ctx.full ? 30_000 : 10_000);
      } finally {
        process.kill(pid, 'SIGCONT');
      }
      ctx.log('redis-pause: SIGCONT');
      return Date.now();
    },
  });
}

module.exports = { 'redis-flush': redisFlush, 'redis-pause': redisPause };
