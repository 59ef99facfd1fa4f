'use strict';

/**
 * The schema registry down at the services' start (the normalizer and the aggregator restarted while it is
 * away; they register and look up schemas at start), and SIGKILLed during the run, while webhooks keep arriving.
 * A service that exits while the registry is away is started again, as its supervisor would (counted).
 */
const { setTimeout: sleep } = require('node:timers/promises');
const { underLoad } = require('../lib/context');

async function registryDuring(ctx) {
  const seconds = ctx.full ? 60 : 20;
  const rate = 20;
  return underLoad(ctx, {
    name: 'registry-kill',
    vehicles: Math.round((rate * seconds) / 2),
    rate,
    fault: async ({ t0 }) => {
      await sleep(Math.max(0, t0 + seconds * 250 - Date.now()));
      ctx.log('registry-kill: SIGKILL the registry');
      await ctx.infra.stack.killRegistry('SIGKILL');
      await sleep(ctx.full ? 30_000 : 10_000);
      ctx.log('registry-kill: starting the registry again');
      await ctx.infra.stack.startRegistry();
      return Date.now();
    },
  });
}

async function registryAtStart(ctx) {
  const seconds = ctx.full ? 60 : 20;
  const rate = 20;
  const restarts = {};
  const result = await underLoad(ctx, {
    name: 'registry-at-start',
    vehicles: Math.round((rate * seconds) / 2),
    rate,
    fault: async () => {
      const services = [ctx.platform.normalizer, ctx.platform.aggregator, ctx.platform.notifier];
      ctx.log('registry-at-start: SIGKILL the registry, restart the normalizer, aggregator and notifier');
      await ctx.infra.stack.killRegistry('SIGKILL');
      for (const s of services) {
        await s.stop();
        s.start();
      }
      const away = Date.now() + (ctx.full ? 30_000 : 10_000);
      while (Date.now() < away) {
        for (const s of services) {
          if (!s.running()) {
            restarts[s.name] = (restarts[s.name] ?? 0) + 1;
            s.start();
          }
        }
        await sleep(500);
      }
      ctx.log('registry-at-start: starting the registry again');
      await ctx.infra.stack.startRegistry();
      for (const s of services) {
        if (!s.running()) {
          restarts[s.name] = (restarts[s.name] ?? 0) + 1;
          s.start();
        }
      }
      await Promise.all(services.map((s) => s.waitReady()));
      return Date.now();
    },
  });
  result.details.exitedWhileRegistryAway = restarts;
  return result;
}

module.exports = { 'registry-kill': registryDuring, 'registry-at-start': registryAtStart };
