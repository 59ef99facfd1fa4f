'use strict';
/* global fetch, AbortSignal */

/**
 * The soak (`--full` only, or by name): readings at a steady rate through all four services to the customer
 * receiver for 10 minutes (RELIABILITY_SOAK_S to change it). Every 10 s each service's RSS (from /proc) and
 * event-loop lag (prom-client's `nodejs_eventloop_lag_p99_seconds` on its /metrics) are sampled. At the end the
 * consumer groups' lag (end offsets minus committed offsets of the normalizer, the aggregator and the notifier)
 * must come back to 0, and the RSS growth of each service (last sample over the first after warm-up) is reported.
 */
const { setTimeout: sleep } = require('node:timers/promises');
const { Kafka, logLevel } = require('kafkajs');
const { underLoad } = require('../lib/context');

async function eventLoopLagMs(service) {
  try {
    const res = await fetch(`${service.baseUrl}/metrics`, { signal: AbortSignal.timeout(5_000) });
    const text = await res.text();
    const m = text.match(/^nodejs_eventloop_lag_p99_seconds(?:\{[^}]*\})? ([0-9.eE+-]+)$/m);
    return m ? Math.round(Number(m[1]) * 1000) : undefined;
  } catch {
    return undefined;
  }
}

/** Sum over the group's topics of end offset minus committed offset (uncommitted partitions count whole). */
async function groupLag(admin, groupId, topics) {
  let lag = 0;
  for (const topic of topics) {
    const ends = await admin.fetchTopicOffsets(topic).catch(() => []);
    const [committed] = await admin
      .fetchOffsets({ groupId, topics: [topic] })
      .catch(() => [{ partitions: [] }]);
    for (const end of ends) {
      const c = committed?.partitions.find((p) => p.partition === end.partition);
      const at = c && Number(c.offset) >= 0 ? Number(c.offset) : Number(end.low);
      lag += Math.max(0, Number(end.high) - at);
    }
  }
  return lag;
}

async function soak(ctx) {
  const seconds = Number(process.env.RELIABILITY_SOAK_S ?? 600);
  const rate = 10;
  const services = Object.values(ctx.platform.services);
  const samples = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const s = { at: Date.now() };
      for (const svc of services) {
        s[svc.name] = {
          rssMiB: Math.round((svc.rssBytes() ?? 0) / 2 ** 20),
          lagMs: await eventLoopLagMs(svc),
        };
      }
      samples.push(s);
      await sleep(10_000);
    }
  })();
  const result = await underLoad(ctx, {
    name: 'soak',
    vehicles: Math.round((rate * seconds) / 2),
    rate,
    fault: async () => undefined,
  });
  sampling = false;
  await sampler;
  const prefix = ctx.platform.normalizer.env.KAFKA_TOPIC_PREFIX;
  const kafka = new Kafka({
    clientId: 'reliability-lag',
    brokers: ctx.infra.brokers,
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  await admin.connect();
  const groups = {
    normalizer: [`${prefix}ev.raw.telematica.v1`, `${prefix}ev.raw.smartcar.v1`],
    aggregator: [`${prefix}ev.vehicle-telemetry.v1`],
    notifier: [`${prefix}ev.vehicle-telemetry.v1`, `${prefix}ev.charging-sessions.v1`],
  };
  const lag = {};
  const deadline = Date.now() + 120_000;
  for (;;) {
    for (const [name, topics] of Object.entries(groups))
      lag[name] = await groupLag(admin, `${prefix}${name}`, topics);
    if (Object.values(lag).every((v) => v === 0) || Date.now() > deadline) break;
    await sleep(2_000);
  }
  await admin.disconnect();
  const warm = samples[Math.min(samples.length - 1, 3)] ?? samples[0];
  const last = samples[samples.length - 1];
  const rssGrowth = {};
  const maxLagMs = {};
  for (const svc of services) {
    rssGrowth[svc.name] =
      warm && last ? `${warm[svc.name].rssMiB} -> ${last[svc.name].rssMiB} MiB` : undefined;
    maxLagMs[svc.name] = Math.max(0, ...samples.map((s) => s[svc.name].lagMs ?? 0));
  }
  // No fault to recover from: the time until everything arrived is the run's length, not a recovery.
  result.recoveryMs = null;
  result.details.consumerLagAtEnd = lag;
  result.details.rssGrowth = rssGrowth;
  result.details.maxEventLoopLagP99Ms = maxLagMs;
  result.details.samples = samples;
  if (!Object.values(lag).every((v) => v === 0)) {
    result.verdict = `${result.verdict === 'pass' ? 'FAIL: ' : `${result.verdict}, `}consumer lag not back to 0 (${JSON.stringify(lag)})`;
  }
  return result;
}

module.exports = { soak };
