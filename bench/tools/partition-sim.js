'use strict';

/**
 * How evenly a deliveries topic keyed by endpoint id spreads skewed traffic (issue 17): endpoints whose shares
 * of the deliveries follow a power law, their ids hashed over N partitions by the project's own partitioner
 * (`Murmur2Partitioner` from packages/kafka/dist; build first), the partitions spread over the consumer group's
 * instances as kafkajs's round-robin assignor spreads one topic. A simulation: no Kafka, no Redis, no network;
 * seeded, so the same options give the same table. Prints the table and writes
 * bench/results/partition-sim-<timestamp>.json (and -latest.json).
 *
 *   node bench/tools/partition-sim.js [--endpoints=1000,10000] [--partitions=6,12,24,48,96] [--instances=6]
 *        [--zipf=1] [--hot-share=0.2] [--trials=20] [--seed=17]
 *        [--concurrency=10] [--response-ms=50,200,1000] [--instance-capacity=5000]
 *
 * Traffic patterns per endpoint count: `uniform` (every endpoint the same: only the hash's own unevenness),
 * `zipf s=<zipf>` (rank r gets 1/r^s), and `hot <hot-share>` (one endpoint takes that share, the rest Zipf).
 * `--instance-capacity` (deliveries/s one notifier instance does) and `--concurrency` / `--response-ms` feed the
 * second table: what one endpoint owned by one partition can take (Little's law), and at what total rate an
 * endpoint with `--hot-share` of the traffic reaches it.
 */
const { writeResults, printTable } = require('../lib/report');
const {
  loadPartitioner,
  partitionerFn,
  simulate,
  fleetCeiling,
  endpointCeiling,
} = require('../lib/partition-sim');

const option = (name, fallback) =>
  (process.argv.find((a) => a.startsWith(`--${name}=`)) || `=${fallback}`).split('=')[1];
const numbers = (name, fallback) => option(name, fallback).split(',').map(Number);
const number = (name, fallback) => Number(option(name, fallback));

function main() {
  const startedAt = new Date().toISOString();
  const endpointCounts = numbers('endpoints', '1000,10000');
  const partitionCounts = numbers('partitions', '6,12,24,48,96');
  const instances = number('instances', 6);
  const zipf = number('zipf', 1);
  const hotShare = number('hot-share', 0.2);
  const trials = number('trials', 20);
  const seed = number('seed', 17);
  const concurrency = number('concurrency', 10);
  const responseMs = numbers('response-ms', '50,200,1000');
  const instanceCapacity = number('instance-capacity', 5000);
  const bad = [...endpointCounts, ...partitionCounts, instances, trials].some(
    (n) => !(Number.isInteger(n) && n > 0),
  );
  if (bad || !(zipf >= 0) || !(hotShare > 0 && hotShare < 1)) {
    throw new Error('partition-sim: counts must be positive integers, --zipf >= 0, 0 < --hot-share < 1');
  }

  const partitionOf = partitionerFn(loadPartitioner());
  const patterns = [
    { name: 'uniform', traffic: { zipf: 0 } },
    { name: `zipf s=${zipf}`, traffic: { zipf } },
    { name: `hot ${Math.round(hotShare * 100)} % + zipf`, traffic: { zipf, hotShare } },
  ];
  const rows = [];
  for (const endpoints of endpointCounts) {
    for (const pattern of patterns) {
      for (const partitions of partitionCounts) {
        const result = simulate({
          endpoints,
          partitions,
          traffic: pattern.traffic,
          trials,
          seed,
          instances,
          partitionOf,
        });
        rows.push({ pattern: pattern.name, ...result });
      }
    }
  }

  const pct = (share) => (share * 100).toFixed(share < 0.01 ? 2 : 1);
  const x = (ratio) => ratio.toFixed(2);
  printTable(
    [
      'endpoints',
      'traffic',
      'partitions',
      'top endpoint %',
      'partition max/mean (worst)',
      'p99/mean',
      'hottest partition % (worst)',
      'ceiling, 1 instance/partition',
      `${instances} instances: max/mean (worst)`,
      `ceiling, ${instances} instances`,
    ],
    rows.map((r) => [
      r.endpoints,
      r.pattern,
      r.partitions,
      pct(r.topEndpointShare),
      `${x(r.partition.maxOverMean.mean)} (${x(r.partition.maxOverMean.worst)})`,
      x(r.partition.p99OverMean),
      `${pct(r.partition.hottestShare.mean)} (${pct(r.partition.hottestShare.worst)})`,
      `${fleetCeiling(r.partition.hottestShare.mean).toFixed(1)} of ${r.partitions}`,
      `${x(r.instance.maxOverMean.mean)} (${x(r.instance.maxOverMean.worst)})`,
      `${fleetCeiling(r.instance.hottestShare.mean).toFixed(1)} of ${r.instances}`,
    ]),
  );
  process.stdout.write(
    `Mean over ${trials} draws of endpoint ids (seed ${seed}), worst in brackets; p99/mean over all partitions of all draws.\n` +
      "Ceiling: the total the fleet takes before its busiest instance is full, in instances' capacity (1 / hottest share).\n",
  );

  const hot = responseMs.map((ms) => {
    const ceiling = endpointCeiling({ concurrency, responseMs: ms, instanceCapacity });
    return { responseMs: ms, concurrency, endpointCeiling: ceiling, totalAtCeiling: ceiling / hotShare };
  });
  printTable(
    [
      'endpoint response ms',
      'concurrency',
      'endpoint ceiling /s',
      `total /s when a ${pct(hotShare)} % endpoint reaches it`,
    ],
    hot.map((h) => [
      h.responseMs,
      h.concurrency,
      Math.round(h.endpointCeiling),
      Math.round(h.totalAtCeiling),
    ]),
  );
  process.stdout.write(
    `One partition, one instance: an endpoint never gets more than min(concurrency / response time, ${instanceCapacity}/s of the instance).\n`,
  );

  writeResults('partition-sim', {
    name: 'partition-sim',
    startedAt,
    parameters: {
      endpointCounts,
      partitionCounts,
      instances,
      zipf,
      hotShare,
      trials,
      seed,
      concurrency,
      responseMs,
      instanceCapacity,
      partitioner: 'packages/kafka/dist/partitioner.js Murmur2Partitioner',
      assignment: 'round robin: partition p to instance p mod instances',
    },
    rows,
    hotEndpoint: hot,
  });
}

main();
