'use strict';

/**
 * Each consumer (normalizer, session aggregator, notifier) SIGKILLed at a random point while webhooks keep
 * arriving, and started again; the full mode kills each one three times.
 */
const { randomInt } = require('node:crypto');
const { setTimeout: sleep } = require('node:timers/promises');
const { underLoad } = require('../lib/context');

async function consumerKill(ctx) {
  const seconds = ctx.full ? 90 : 30;
  const rate = 20;
  const rounds = ctx.full ? 3 : 1;
  const kills = [];
  const result = await underLoad(ctx, {
    name: 'consumer-kill',
    vehicles: Math.round((rate * seconds) / 2),
    rate,
    fault: async ({ t0 }) => {
      const services = [ctx.platform.normalizer, ctx.platform.aggregator, ctx.platform.notifier];
      const slotMs = (seconds * 1000 * 0.8) / (services.length * rounds);
      for (let r = 0; r < rounds; r++) {
        for (const [i, service] of services.entries()) {
          const slotStart = t0 + (r * services.length + i) * slotMs;
          await sleep(Math.max(0, slotStart + randomInt(Math.max(1, Math.floor(slotMs / 2))) - Date.now()));
          ctx.log(`consumer-kill: SIGKILL ${service.name} (pid ${service.pid})`);
          await service.kill('SIGKILL');
          kills.push({ service: service.name, at: Date.now() - t0 });
          await sleep(randomInt(500, 2_000));
          service.start();
          await service.waitReady();
        }
      }
      return Date.now();
    },
  });
  result.details.kills = kills;
  return result;
}

module.exports = { 'consumer-kill': consumerKill };
