'use strict';

/**
 * The floor under the e2e bench (issue 16): what the platform's shape costs on this machine before any of its own
 * work. Four plain processes shaped like the services (an HTTP intake producing, two consume-and-produce hops, a
 * consumer posting to a sink) at the e2e bench's low rates, once on kafkajs and once on @platformatic/kafka, in
 * the same run as the other benches. See tools/floor-pipeline.js and docs/performance.md (fourth pass).
 */
const { prepare, stackPids } = require('./lib/infra');
const report = require('./lib/report');
const { measureFloor } = require('./tools/floor-pipeline');

const CLIENTS = ['kafkajs', 'platformatic'];
const ROLES = ['ingress', 'normalizer', 'aggregator', 'notifier', 'kafka', 'sink'];

async function run(options) {
  const infra = prepare(options);
  const startedAt = new Date().toISOString();
  const rates = String(options.floorRates)
    .split(',')
    .map((r) => Number(r.trim()));
  if (rates.length === 0 || !rates.every((r) => r > 0))
    throw new Error(`BENCH_FLOOR_RATES must list positive rates (got "${options.floorRates}")`);
  const kafkaPid = stackPids(infra).kafka;
  const results = [];
  for (const client of CLIENTS) {
    const rows = await measureFloor({
      brokers: infra.brokers,
      client,
      rates,
      seconds: options.floorDurationS,
      warmupS: options.quick ? 2 : 10,
      warmBroker: !options.quick,
      kafkaPid,
      log: report.log,
    });
    for (const row of rows) results.push({ client, ...row });
  }
  report.printTable(
    ['µs CPU per webhook', ...ROLES, 'four + broker (cores)', 'accepted', 'not accepted', 'at sink'],
    results.map((r) => [
      `${r.client} ${r.rate}/s`,
      ...ROLES.map((role) => r.usPerWebhook[role] ?? 'n/a'),
      r.missing?.includes('kafka') ? `${r.fourPlusBrokerCores} (broker n/a)` : r.fourPlusBrokerCores,
      r.webhooks,
      r.failed,
      r.atSink,
    ]),
  );
  report.log(
    'floor: four bare hops through Kafka (no verification, decoding, Redis or state), one fetch and one produce per batch and hop, offsets committed every second; "at sink" counts what reached the sink in the window (the accepted ones, when nothing was lost)',
  );
  report.writeResults('floor', {
    machine: report.machineInfo(),
    startedAt,
    rates,
    seconds: options.floorDurationS,
    results,
  });
}

module.exports = { run };
