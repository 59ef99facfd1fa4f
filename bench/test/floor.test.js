'use strict';

/** The floor bench's arithmetic (no infrastructure): `node --test bench/test/`. */
const test = require('node:test');
const assert = require('node:assert/strict');

const { floorRow } = require('../tools/floor-pipeline');

test('floorRow: cores and µs per webhook per process; the four hops and the broker without the sink', () => {
  const row = floorRow({
    rate: 50,
    webhooks: 2_000,
    wallSeconds: 40,
    cpu: { ingress: 2, normalizer: 3, aggregator: 3, notifier: 4, kafka: 8, sink: 1 },
  });
  assert.equal(row.cores.ingress, 0.05);
  assert.equal(row.cores.kafka, 0.2);
  assert.equal(row.usPerWebhook.notifier, 2_000);
  assert.equal(row.usPerWebhook.sink, 500);
  // (2 + 3 + 3 + 4 + 8) / 40 s: the sink's second is the customer's, not counted.
  assert.equal(row.fourPlusBrokerCores, 0.5);
  assert.equal(row.seconds, 40);
  assert.equal(row.missing, undefined);
});

test('floorRow: a process whose CPU could not be read is left out, not counted as zero', () => {
  const row = floorRow({
    rate: 500,
    webhooks: 20_000,
    wallSeconds: 40.04,
    cpu: { ingress: 8, normalizer: 8, aggregator: 8, notifier: 8, kafka: undefined, sink: 2 },
  });
  assert.equal('kafka' in row.cores, false);
  assert.deepEqual(row.missing, ['kafka']);
  assert.equal(row.fourPlusBrokerCores, 0.799);
  assert.equal(row.seconds, 40);
});
