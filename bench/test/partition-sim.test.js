'use strict';

/**
 * Unit tests of the partition simulation's pure functions (`bench/lib/partition-sim.js`), no infrastructure:
 * `npm test -w @ampflow/bench`. Needs packages/kafka built (`npx tsc -b`): the partitioner is the project's own.
 */
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const {
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
} = require('../lib/partition-sim');

const { seededRandom } = require('@ampflow/testing/dist/seeded-random');
const { keyHash } = require(path.join(__dirname, '..', '..', 'packages', 'kafka', 'dist', 'partitioner.js'));
const sum = (values) => [...values].reduce((a, b) => a + b, 0);

test('endpointIds: the notifier id format, distinct, reproducible from the seed', () => {
  const ids = endpointIds(500, seededRandom(1));
  assert.ok(ids.every((id) => /^ep_[a-z2-7]{26}$/.test(id)));
  assert.equal(new Set(ids).size, 500);
  assert.deepEqual(endpointIds(500, seededRandom(1)), ids);
  assert.notDeepEqual(endpointIds(500, seededRandom(2)), ids);
});

test('trafficShares: uniform, Zipf by rank, and one hot endpoint', () => {
  const uniform = trafficShares(4, { zipf: 0 });
  assert.deepEqual([...uniform], [0.25, 0.25, 0.25, 0.25]);

  const zipf = trafficShares(1000, { zipf: 1 });
  assert.ok(Math.abs(sum(zipf) - 1) < 1e-12);
  assert.ok(Math.abs(zipf[0] / zipf[1] - 2) < 1e-12, 'rank 1 takes twice rank 2 at s=1');
  assert.ok(Math.abs(zipf[0] / zipf[9] - 10) < 1e-12);

  const hot = trafficShares(1000, { zipf: 1, hotShare: 0.2 });
  assert.equal(hot[0], 0.2);
  assert.ok(Math.abs(sum(hot.subarray(1)) - 0.8) < 1e-12);
  assert.ok(Math.abs(hot[1] / hot[2] - 2) < 1e-12, 'the others keep their Zipf shape');

  assert.throws(() => trafficShares(1, { hotShare: 0.2 }), /needs at least one other/);
  assert.throws(() => trafficShares(10, { hotShare: 1 }), /hotShare/);
});

test('partitionerFn: the partition the project partitioner gives, (murmur2 & 0x7fffffff) mod N', () => {
  const partitionOf = partitionerFn(loadPartitioner());
  for (const id of endpointIds(200, seededRandom(5))) {
    for (const partitions of [6, 7, 48]) {
      assert.equal(partitionOf(id, partitions), (keyHash(id) & 0x7fffffff) % partitions);
    }
  }
});

test('partitionLoads: every share lands on exactly one partition', () => {
  const partitionOf = (key) => Number(key); // key "p" goes to partition p
  const loads = partitionLoads(['0', '2', '2', '1'], [0.1, 0.2, 0.3, 0.4], 4, partitionOf);
  assert.deepEqual([...loads], [0.1, 0.4, 0.5, 0]);
});

test('instanceLoads: round robin, partition p to member p mod instances; more members than partitions idle', () => {
  assert.deepEqual([...instanceLoads(Float64Array.of(1, 2, 3, 4, 5, 6), 4)], [6, 8, 3, 4]);
  assert.deepEqual([...instanceLoads(Float64Array.of(1, 2), 5)], [1, 2]);
});

test('with a partition count that is a multiple of the instances, each instance holds the endpoints it would with N = instances', () => {
  // (h mod 12) mod 6 = h mod 6: more partitions over the same round-robin members do not regroup the endpoints.
  const partitionOf = partitionerFn(loadPartitioner());
  const ids = endpointIds(2000, seededRandom(9));
  const shares = trafficShares(2000, { zipf: 1 });
  const six = partitionLoads(ids, shares, 6, partitionOf);
  for (const partitions of [12, 48]) {
    const byInstance = instanceLoads(partitionLoads(ids, shares, partitions, partitionOf), 6);
    byInstance.forEach((load, i) => assert.ok(Math.abs(load - six[i]) < 1e-12));
  }
});

test('loadStats: max, p99 and min over the mean, hottest share, empty partitions', () => {
  const stats = loadStats(Float64Array.of(0.5, 0.25, 0.25, 0));
  assert.equal(stats.maxOverMean, 2);
  assert.equal(stats.p99OverMean, 2);
  assert.equal(stats.minOverMean, 0);
  assert.equal(stats.hottestShare, 0.5);
  assert.equal(stats.empty, 1);
});

test('simulate: reproducible from its seed; a 20 % endpoint puts at least 20 % on one partition', () => {
  const partitionOf = partitionerFn(loadPartitioner());
  const options = { endpoints: 1000, partitions: 24, trials: 3, seed: 3, instances: 6, partitionOf };
  const hot = simulate({ ...options, traffic: { zipf: 1, hotShare: 0.2 } });
  assert.deepEqual(simulate({ ...options, traffic: { zipf: 1, hotShare: 0.2 } }), hot);
  assert.ok(hot.partition.hottestShare.mean >= 0.2);
  assert.ok(hot.partition.maxOverMean.worst >= hot.partition.maxOverMean.mean);
  assert.equal(hot.topEndpointShare, 0.2);
  const uniform = simulate({ ...options, traffic: { zipf: 0 } });
  assert.ok(uniform.partition.maxOverMean.mean < hot.partition.maxOverMean.mean);
});

test('fleetCeiling and endpointCeiling: 1 / hottest share; concurrency over response time, capped by the instance', () => {
  assert.equal(fleetCeiling(0.25), 4);
  assert.equal(endpointCeiling({ concurrency: 10, responseMs: 200 }), 50);
  assert.equal(endpointCeiling({ concurrency: 10, responseMs: 1, instanceCapacity: 5000 }), 5000);
});
