'use strict';

/**
 * The pure part of `tools/partition-sim.js`: endpoints with skewed traffic hashed over a deliveries topic keyed by
 * endpoint id, and how evenly the partitions (and the instances that own them) share the load. No I/O; every
 * random draw comes from packages/testing's seeded generator (mulberry32), so a run is reproducible.
 *
 * The partition of a key is chosen by the project's own partitioner (`Murmur2Partitioner` of @ampflow/kafka, from
 * its built `dist/`), called exactly as kafkajs calls it, so the simulation hashes what the producer would.
 */
const path = require('node:path');
const { seededRandom } = require('@ampflow/testing/dist/seeded-random');

/** The built partitioner; a clear error when `dist/` is missing. */
function loadPartitioner() {
  const file = path.join(__dirname, '..', '..', 'packages', 'kafka', 'dist', 'partitioner.js');
  try {
    return require(file).Murmur2Partitioner;
  } catch (error) {
    throw new Error(`cannot load ${file} (run \`npx tsc -b\` first): ${error.message}`);
  }
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** `count` endpoint ids in the notifier's format (`ep_` + 26 base32 characters), drawn from `random` (a SeededRandom). */
function endpointIds(count, random) {
  const ids = new Array(count);
  for (let i = 0; i < count; i += 1) {
    let id = 'ep_';
    for (let c = 0; c < 26; c += 1) id += BASE32[random.int(0, 31)];
    ids[i] = id;
  }
  return ids;
}

/**
 * Each endpoint's share of the deliveries (they sum to 1), by rank: Zipf with exponent `zipf` (weight 1 / rank^s;
 * 0 is uniform). With `hotShare`, the first endpoint takes that share alone and the others share the rest by Zipf.
 */
function trafficShares(count, { zipf = 1, hotShare = 0 } = {}) {
  if (!(count >= 1)) throw new Error('trafficShares: count must be at least 1');
  if (!(hotShare >= 0 && hotShare < 1)) throw new Error('trafficShares: hotShare must be in [0, 1)');
  if (hotShare > 0 && count < 2) throw new Error('trafficShares: a hot endpoint needs at least one other');
  const shares = new Float64Array(count);
  const first = hotShare > 0 ? 1 : 0;
  let total = 0;
  for (let i = first; i < count; i += 1) {
    shares[i] = 1 / (i - first + 1) ** zipf;
    total += shares[i];
  }
  for (let i = first; i < count; i += 1) shares[i] = (shares[i] / total) * (1 - hotShare);
  if (hotShare > 0) shares[0] = hotShare;
  return shares;
}

/** `(key, partitions) => partition`, through the given kafkajs custom partitioner as the producer calls it. */
function partitionerFn(Partitioner) {
  const partition = Partitioner();
  const metadata = new Map();
  return (key, partitions) => {
    let partitionMetadata = metadata.get(partitions);
    if (!partitionMetadata) {
      partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({
        partitionId,
        leader: 0,
        replicas: [0],
        isr: [0],
      }));
      metadata.set(partitions, partitionMetadata);
    }
    return partition({ topic: 'deliveries', partitionMetadata, message: { key, value: null } });
  };
}

/** Sum of the shares of the endpoints each partition holds. */
function partitionLoads(ids, shares, partitions, partitionOf) {
  const loads = new Float64Array(partitions);
  for (let i = 0; i < ids.length; i += 1) loads[partitionOf(ids[i], partitions)] += shares[i];
  return loads;
}

/**
 * Partitions spread over `instances` group members the way kafkajs's default (round-robin) assignor spreads one
 * topic's partitions: partition p to member p mod instances. Sum of the loads each member owns.
 */
function instanceLoads(loads, instances) {
  const owned = new Float64Array(Math.min(instances, loads.length));
  for (let p = 0; p < loads.length; p += 1) owned[p % owned.length] += loads[p];
  return owned;
}

/** Nearest-rank percentile of an ascending array, p in (0, 100]. */
function percentile(sorted, p) {
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** How even a set of loads (shares that sum to the total) is. */
function loadStats(loads) {
  let total = 0;
  let highest = 0;
  let empty = 0;
  for (const load of loads) {
    total += load;
    if (load > highest) highest = load;
    if (load === 0) empty += 1;
  }
  const average = total / loads.length;
  const sorted = Float64Array.from(loads).sort();
  return {
    maxOverMean: highest / average,
    p99OverMean: percentile(sorted, 99) / average,
    minOverMean: sorted[0] / average,
    hottestShare: highest / total,
    empty,
  };
}

const mean = (values) => values.reduce((a, b) => a + b, 0) / values.length;
const max = (values) => values.reduce((a, b) => Math.max(a, b), -Infinity);

/**
 * One configuration over `trials` independent draws of endpoint ids (the traffic shares stay fixed; which ids
 * get them is what the hash spreads). Per trial the loads of the partitions and of `instances` members; across
 * trials the mean and the worst, and the 99th percentile of all partitions' loads pooled.
 */
function simulate({ endpoints, partitions, traffic, trials, seed, instances, partitionOf }) {
  const shares = trafficShares(endpoints, traffic);
  const random = seededRandom(seed);
  const perTrial = [];
  const pooled = [];
  for (let t = 0; t < trials; t += 1) {
    const ids = endpointIds(endpoints, random);
    const loads = partitionLoads(ids, shares, partitions, partitionOf);
    const meanLoad = 1 / partitions;
    for (const load of loads) pooled.push(load / meanLoad);
    perTrial.push({ partitions: loadStats(loads), instances: loadStats(instanceLoads(loads, instances)) });
  }
  pooled.sort((a, b) => a - b);
  const of = (pick) => perTrial.map(pick);
  return {
    endpoints,
    partitions,
    instances: Math.min(instances, partitions),
    traffic,
    trials,
    seed,
    topEndpointShare: max(shares),
    partition: {
      maxOverMean: {
        mean: mean(of((r) => r.partitions.maxOverMean)),
        worst: max(of((r) => r.partitions.maxOverMean)),
      },
      p99OverMean: percentile(pooled, 99),
      hottestShare: {
        mean: mean(of((r) => r.partitions.hottestShare)),
        worst: max(of((r) => r.partitions.hottestShare)),
      },
      emptyPartitions: {
        mean: mean(of((r) => r.partitions.empty)),
        worst: max(of((r) => r.partitions.empty)),
      },
    },
    instance: {
      maxOverMean: {
        mean: mean(of((r) => r.instances.maxOverMean)),
        worst: max(of((r) => r.instances.maxOverMean)),
      },
      hottestShare: {
        mean: mean(of((r) => r.instances.hottestShare)),
        worst: max(of((r) => r.instances.hottestShare)),
      },
    },
  };
}

/**
 * What the fleet can take before its busiest instance is full, in units of one instance's capacity: the hottest
 * instance's share of the traffic reaches 1 instance when the total reaches 1 / share.
 */
function fleetCeiling(hottestShare) {
  return 1 / hottestShare;
}

/**
 * The most one endpoint can take when one instance owns it (Little's law): its concurrency over its response
 * time, and never more than the instance's own capacity. Deliveries/s.
 */
function endpointCeiling({ concurrency, responseMs, instanceCapacity = Infinity }) {
  return Math.min(concurrency / (responseMs / 1000), instanceCapacity);
}

module.exports = {
  loadPartitioner,
  endpointIds,
  trafficShares,
  partitionerFn,
  partitionLoads,
  instanceLoads,
  loadStats,
  simulate,
  fleetCeiling,
  endpointCeiling,
};
