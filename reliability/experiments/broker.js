'use strict';

/** The broker SIGKILLed and restarted, and SIGSTOPped then continued, while webhooks keep arriving. */
const { setTimeout: sleep } = require('node:timers/promises');
const { underLoad, stackPid } = require('../lib/context');

async function brokerKill(ctx) {
  const seconds = ctx.full ? 60 : 20;
  const rate = 20;
  return underLoad(ctx, {
    name: 'broker-kill',
    vehicles: Math.round((rate * seconds) / 2),
    rate,
    fault: async ({ t0 }) => {
      await sleep(Math.max(0, t0 + seconds * 250 - Date.now()));
      ctx.log('broker-kill: SIGKILL the broker');
      await ctx.infra.stack.killKafka('SIGKILL');
      await sleep(ctx.full ? 20_000 : 5_000);
      ctx.log('broker-kill: starting the broker again');
      await ctx.infra.stack.startKafka();
      ctx.log('broker-kill: broker answers again');
      return Date.now();
    },
  });
}

async function brokerStop(ctx) {
  const seconds = ctx.full ? 60 : 20;
  const rate = 20;
  return underLoad(ctx, {
    name: 'broker-stop',
    vehicles: Math.round((rate * seconds) / 2),
    rate,
    fault: async ({ t0 }) => {
      await sleep(Math.max(0, t0 + seconds * 250 - Date.now()));
      const pid = stackPid(ctx.infra, 'kafka');
      ctx.log(`broker-stop: SIGSTOP the broker (pid ${pid})`);
      process.kill(pid, 'SIGSTOP');
      try {
        await sleep(ctx.full ? 30_000 : 10_000);
      } finally {
        process.kill(pid, 'SIGCONT');
      }
      ctx.log('broker-stop: SIGCONT');
      return Date.now();
    },
  });
}

module.exports = { 'broker-kill': brokerKill, 'broker-stop': brokerStop };
