'use strict';

/**
 * Unit tests of the bench's own logic (no infrastructure): `node --test bench/test/`.
 * The profile stages, the request-count deltas, the e2e accounting and targets, the request counter preload.
 */
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');

const { stageShares } = require('../tools/profile-summary');
const { diff } = require('../lib/request-counts');
const { matchEvents, targetsOf } = require('../e2e');

const ROOT = path.join(__dirname, '..', '..');
const file = (rel) => `file://${path.join(ROOT, rel)}`;

/** A profile whose samples are leaves under the given stacks (root first), one sample of 1 ms each. */
function profileOf(stacks) {
  const nodes = [{ id: 1, callFrame: { functionName: '(root)', url: '' }, children: [] }];
  const samples = [];
  for (const stack of stacks) {
    let parent = nodes[0];
    for (const frame of stack) {
      const node = { id: nodes.length + 1, callFrame: frame, children: [] };
      nodes.push(node);
      parent.children.push(node.id);
      parent = node;
    }
    samples.push(parent.id);
  }
  return { nodes, samples, timeDeltas: samples.map(() => 1000) };
}

test('stageShares: a native write under node:net is socket I/O, under kafkajs encoder is Kafka encoding', () => {
  const kafkajsEncoder = {
    functionName: 'writeInt32',
    url: file('node_modules/kafkajs/src/protocol/encoder.js'),
  };
  const net = { functionName: 'writeGeneric', url: 'node:internal/stream_base_commons' };
  const profile = profileOf([
    [kafkajsEncoder, net, { functionName: 'writev', url: '' }],
    [kafkajsEncoder, { functionName: 'concat', url: '' }],
    [
      { functionName: 'handler', url: file('services/ingress/dist/app.js') },
      { functionName: 'parse', url: '' },
    ],
    [{ functionName: '(garbage collector)', url: '' }],
    [{ functionName: '(idle)', url: '' }],
  ]);
  const s = stageShares(profile);
  const byStage = Object.fromEntries(s.stages.map((x) => [x.stage, x.percent]));
  assert.equal(s.busyMicros, 4000);
  assert.equal(s.idleMicros, 1000);
  assert.equal(byStage['socket I/O (net, streams: writes, reads)'], 25);
  assert.equal(byStage['kafkajs encode/decode (records, CRC)'], 25);
  assert.equal(byStage['JSON (parse, stringify)'], 25);
  assert.equal(byStage.GC, 25);
});

test('diff: per service and API deltas, zero deltas left out, services missing a snapshot skipped', () => {
  const a = {
    ingress: { kafka: { Produce: 10, Metadata: 2 }, redis: { commands: 5, roundTrips: 3, pipelines: 1 } },
  };
  const b = {
    ingress: {
      kafka: { Produce: 25, Metadata: 2, Fetch: 1 },
      redis: { commands: 9, roundTrips: 4, pipelines: 1 },
    },
    notifier: { kafka: { Fetch: 3 }, redis: { commands: 0, roundTrips: 0, pipelines: 0 } },
  };
  assert.deepEqual(diff(a, b), {
    ingress: { kafka: { Produce: 15, Fetch: 1 }, redis: { commands: 4, roundTrips: 1, pipelines: 0 } },
  });
});

/** One vehicle of the scenario, every step answered 200 at sentAt + 5 ms. */
function vehicle(id, t0) {
  const sentAt = [0, 1, 2, 3, 4].map((s) => t0 + s * 1000);
  return {
    providerVehicleId: id,
    sentAt,
    acceptedAt: sentAt.map((t) => t + 5),
    status: sentAt.map(() => 200),
  };
}

test('matchEvents: counts missing and duplicated records and webhooks separately', () => {
  const v1 = vehicle('a', 1_000_000);
  const v2 = vehicle('b', 2_000_000);
  const vid = (v) => `telematica:${v.providerVehicleId}`;
  const seen = new Map();
  for (const v of [v1, v2]) for (const t of v.sentAt) seen.set(`${vid(v)}|${t}`, 1);
  seen.set(`${vid(v1)}|${v1.sentAt[2]}`, 2); // one telemetry record twice
  seen.delete(`${vid(v2)}|${v2.sentAt[0]}`); // one missing
  seen.set(`${vid(v1)}|${v1.sentAt[1]}|started`, 1);
  seen.set(`${vid(v1)}|${v1.sentAt[4]}|ended`, 1);
  seen.set(`${vid(v2)}|${v2.sentAt[1]}|started`, 1); // v2 never ended
  const captured = [
    { id: 'w1', at: v1.acceptedAt[1] + 20, type: 'charging_session.started', data: { vehicleId: vid(v1) } },
    { id: 'w2', at: v1.acceptedAt[4] + 30, type: 'charging_session.ended', data: { vehicleId: vid(v1) } },
    { id: 'w2', at: v1.acceptedAt[4] + 40, type: 'charging_session.ended', data: { vehicleId: vid(v1) } },
    { id: 'w3', at: v2.acceptedAt[1] + 10, type: 'charging_session.started', data: { vehicleId: vid(v2) } },
    { id: 'x', at: 1, type: 'charging_session.started', data: { vehicleId: 'telematica:other' } },
  ];
  const m = matchEvents([v1, v2], captured, new Map(), seen);
  assert.deepEqual(m.records.telemetry, {
    expected: 10,
    found: 9,
    missing: 1,
    duplicates: 1,
    unacknowledgedButPublished: 0,
  });
  assert.deepEqual(m.records.sessionRecords, { expected: 4, found: 3, missing: 1, duplicates: 0 });
  assert.deepEqual(m.counts.started, { expected: 2, received: 2, duplicates: 0 });
  assert.deepEqual(m.counts.ended, { expected: 2, received: 1, duplicates: 1 });
  assert.equal(m.webhooks.repeatedIds, 1);
  assert.equal(m.started.samples, 2);
  assert.equal(m.started.maxMs, 20); // 200 -> sink of v1's started webhook
});

test('targetsOf: a rate that was not kept up meets no CPU target, whatever its cores', () => {
  const row = {
    rate: 500,
    keptUp: false,
    accounted: true,
    load: { perSec: 150 },
    window: { wallSeconds: 200 },
    cores: { wholeMachine: 0.4, servicesAndBroker: 0.3 },
    usPerWebhook: { wholeMachine: 1500 },
    peakRssMiB: { ingress: 100, normalizer: 100, aggregator: 100, notifier: 100 },
    match: { started: { p99Ms: 100 }, ended: { p99Ms: 120 } },
  };
  const t = targetsOf(row);
  assert.equal(t.cpu500.ok, false);
  assert.equal(t.usPerWebhook500.ok, false);
  assert.equal(t.p99at500.ok, true);
  assert.equal(t.rss.ok, true);
  assert.equal(targetsOf({ ...row, keptUp: true }).cpu500.ok, true);
  assert.equal(targetsOf({ ...row, peakRssMiB: { ...row.peakRssMiB, notifier: 151 } }).rss.ok, false);
});

test('kafka-request-counter: counts requests per API and Redis round trips, writes them on SIGUSR2', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-counter-test-'));
  try {
    const script = `
      const Connection = require('kafkajs/src/network/connection');
      const Redis = require('ioredis/built/Redis').default;
      const Pipeline = require('ioredis/built/Pipeline').default;
      const fake = {};
      Object.setPrototypeOf(fake, Connection.prototype);
      // the original send would need a socket: replace what the wrapper calls
      const wrapped = Connection.prototype.send;
      for (const apiName of ['Produce', 'Produce', 'Fetch']) {
        try { wrapped.call(fake, { request: { apiName } }).catch(() => {}); } catch {}
      }
      const r = Object.create(Redis.prototype);
      try { Redis.prototype.sendCommand.call(r, {}); } catch {}
      try { Redis.prototype.sendCommand.call(r, {}, { write() {} }); } catch {}
      try { Pipeline.prototype.exec.call(Object.create(Pipeline.prototype)); } catch {}
      process.kill(process.pid, 'SIGUSR2');
      setTimeout(() => {}, 50);
    `;
    const res = spawnSync(
      process.execPath,
      ['-r', path.join(__dirname, '..', 'tools', 'kafka-request-counter.js'), '-e', script],
      {
        cwd: ROOT,
        env: { ...process.env, BENCH_COUNTS_DIR: dir },
        encoding: 'utf8',
        timeout: 20_000,
      },
    );
    assert.equal(res.status, 0, res.stderr);
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json'));
    assert.equal(files.length, 1);
    const counts = JSON.parse(fs.readFileSync(path.join(dir, files[0]), 'utf8'));
    assert.deepEqual(counts.kafka, { Produce: 2, Fetch: 1 });
    assert.equal(counts.redis.commands, 2);
    assert.equal(counts.redis.roundTrips, 2); // one command alone + one pipeline
    assert.equal(counts.redis.pipelines, 1);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
