'use strict';

/**
 * What the notifier's message log (services/notifier/src/history/message-index.ts) adds to the attempt log's
 * writes: CPU time per message (saveMessages + one attempt recorded + the batch written) and Redis commands per
 * message, with and without the index, side by side in one process (alternating rounds, so machine noise hits
 * both alike). Built code (services/notifier/dist), the Redis at REDIS_URL (default 127.0.0.1:6379), keys under
 * a random `scratch:index-cost:` namespace, deleted after each round.
 *
 *   node bench/tools/message-index-cost.js [--messages=20000] [--rounds=3]
 */
const path = require('node:path');
const { randomUUID } = require('node:crypto');
const { setImmediate } = require('node:timers');
const Redis = require('ioredis');
const { ROOT } = require('../lib/log');

const { createAttemptLog } = require(path.join(ROOT, 'services/notifier/dist/delivery/attempt-log.js'));
const { createMessageIndex } = require(path.join(ROOT, 'services/notifier/dist/history/message-index.js'));

const arg = (name, fallback) =>
  Number((process.argv.find((a) => a.startsWith(`--${name}=`)) || `=${fallback}`).split('=')[1]);
const N = Math.max(1_000, arg('messages', 20_000));
const ROUNDS = Math.max(1, arg('rounds', 3));

async function round(redis, indexed) {
  const namespace = `scratch:index-cost:${randomUUID()}`;
  const log = createAttemptLog(redis, { namespace, retentionMs: 600_000 });
  const sink = indexed ? createMessageIndex(redis, log, { namespace, retentionMs: 600_000 }) : log;
  let commands = 0;
  const pipeline = redis.pipeline.bind(redis);
  redis.pipeline = (...args) => {
    const p = pipeline(...args);
    const exec = p.exec.bind(p);
    p.exec = (...a) => {
      commands += p.length;
      return exec(...a);
    };
    return p;
  };
  const started = process.cpuUsage();
  for (let batch = 0; batch < N / 100; batch += 1) {
    const messages = [];
    for (let i = 0; i < 100; i += 1) {
      const id = `msg_${batch}_${i}`;
      messages.push({
        id,
        type: 'vehicle.telemetry',
        body: '{"type":"vehicle.telemetry","data":{"stateOfChargePercent":42}}',
        routing: { provider: 'smartcar', vehicleIds: ['veh_1'], userId: null, sourceId: id },
        sourceTimestampMs: Date.now(),
        endpointIds: ['ep_1'],
      });
    }
    sink.saveMessages(messages);
    for (const m of messages) {
      sink.record({
        messageId: m.id,
        endpointId: 'ep_1',
        eventType: m.type,
        attempt: 1,
        status: 'succeeded',
        httpStatus: 200,
        durationMs: 3,
        responseExcerpt: 'ok',
        error: null,
        at: new Date().toISOString(),
        next: 'done',
        nextAttemptAt: null,
      });
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  await log.flush();
  const cpu = process.cpuUsage(started);
  redis.pipeline = pipeline;
  await log.stop();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 5_000);
    if (keys.length > 0) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
  return { indexed, cpuUsPerMessage: (cpu.user + cpu.system) / N, commandsPerMessage: commands / N };
}

(async () => {
  const redis = new Redis(process.env.REDIS_URL || 'redis://127.0.0.1:6379');
  try {
    for (let r = 0; r < ROUNDS; r += 1) {
      for (const indexed of [false, true]) {
        const { cpuUsPerMessage, commandsPerMessage } = await round(redis, indexed);
        console.log(
          `round ${r + 1} ${indexed ? 'with the index   ' : 'attempt log alone'}: ` +
            `${cpuUsPerMessage.toFixed(1)} µs CPU/message, ${commandsPerMessage.toFixed(2)} Redis commands/message`,
        );
      }
    }
  } finally {
    await redis.quit();
  }
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
