'use strict';

/**
 * Redis memory per key kind, as the services write them: the ingress's seen marks, the aggregator's vehicle state
 * hash and deadline entry, the notifier's vehicle directory, plug state and fired plug events, done marks, and per
 * message its stored body, attempt list, message-log hash and index entries (the notifier's own built attempt log
 * and message index, services/notifier/dist, write those). The input of the capacity model in docs/scaling.md.
 *
 *   npx tsc -b && node bench/tools/redis-sizes.js [--count=2000]
 *
 * Uses the Redis at REDIS_URL (default 127.0.0.1:6379): keys under random `scratch:<hex>` namespaces of the same
 * length as the services' defaults (`ampflow:ingress`, `ampflow:sessions`, `ampflow:notifier`), so key names are
 * as long as in production; all deleted at the end. Reports `MEMORY USAGE <key> SAMPLES 0` (key, value and the
 * main dictionary entry) averaged per kind; a key with a TTL also has an entry in the expires dictionary, which
 * MEMORY USAGE does not count (about 30 bytes more per key on Redis 7 with jemalloc).
 */
const path = require('node:path');
const { randomBytes } = require('node:crypto');
const Redis = require('ioredis');
const { ROOT } = require('../lib/log');
const { printTable } = require('../lib/report');
const { loadWebhookFixtures } = require('../lib/webhook-requests');

const dist = (rel) => require(path.join(ROOT, rel));
const { mapRawEvent } = dist('services/normalizer/dist/mappers/index.js');
const { initialState, reduce } = dist('services/session-aggregator/dist/session-reducer.js');
const { encodeState } = dist('services/session-aggregator/dist/state-codec.js');
const { fromTelemetry, toBody } = dist('services/notifier/dist/events/customer-events.js');
const { mergeVehicle, observationsOf } = dist('services/notifier/dist/events/vehicle-directory.js');
const { applyPlugReading } = dist('services/notifier/dist/events/plug-state.js');
const { createAttemptLog } = dist('services/notifier/dist/delivery/attempt-log.js');
const { createMessageIndex } = dist('services/notifier/dist/history/message-index.js');

const COUNT = Math.max(
  200,
  Number((process.argv.find((a) => a.startsWith('--count=')) || '=2000').split('=')[1]),
);
const DAY_S = 86_400;
const ENDPOINT_ID = 'ep_abcdefghijklmnopqrstuvwxyz';

/** `scratch:` + hex, as long as `production` (a namespace of the same length gives keys of the same length). */
const scratchNamespace = (production) =>
  `scratch:${randomBytes(16)
    .toString('hex')
    .slice(0, production.length - 'scratch:'.length)}`;

/** A canonical telemetry reading of the Telematica plug-status fixture, with its own ids and time. */
function readings() {
  const body = loadWebhookFixtures()
    .telematica.map((f) => JSON.parse(f.body.toString('utf8')))
    .find((b) => b.type === 'vehicle.plug-status');
  const base = mapRawEvent({
    provider: 'telematica',
    providerEventId: 'msg_base',
    eventType: body.type,
    receivedAt: Date.parse('2026-12-07T00:00:00.000Z'),
    body,
  }).value;
  return (vehicle, n) => ({
    ...base,
    vehicleId: `${base.vehicleId.slice(0, -8)}${String(vehicle).padStart(8, '0')}`,
    eventId: `msg_${String(vehicle).padStart(16, '0')}${String(n).padStart(16, '0')}`,
    occurredAt: base.occurredAt + n * 60_000,
    receivedAt: base.receivedAt + n * 60_000,
  });
}

async function memoryUsage(redis, keys) {
  const pipeline = redis.pipeline();
  for (const key of keys) pipeline.memory('USAGE', key, 'SAMPLES', 0);
  const replies = await pipeline.exec();
  return replies.map(([error, value]) => {
    if (error) throw error;
    if (value === null) throw new Error('a key to measure is missing');
    return Number(value);
  });
}

const mean = (values) => values.reduce((a, b) => a + b, 0) / values.length;

async function deleteNamespace(redis, namespace) {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 5_000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
}

async function main() {
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 2 });
  const ingressNs = scratchNamespace('ampflow:ingress');
  const sessionsNs = scratchNamespace('ampflow:sessions');
  const notifierNs = scratchNamespace('ampflow:notifier');
  const reading = readings();
  const rows = [];
  const perKey = async (kind, keys, note) => {
    const sizes = await memoryUsage(redis, keys);
    rows.push({ kind, keys: keys.length, bytes: mean(sizes), note });
  };
  try {
    // Ingress: SET <ns>:seen:<provider>:<eventId> 1 EX 7 days NX (services/ingress/src/seen-store.ts).
    const seen = Array.from(
      { length: COUNT },
      (_, i) => `${ingressNs}:seen:telematica:${reading(i, 0).eventId}`,
    );
    const p1 = redis.pipeline();
    for (const key of seen) p1.set(key, '1', 'EX', 7 * DAY_S, 'NX');
    await p1.exec();
    await perKey('ingress seen mark', seen, 'per event, 7 days (DEDUP_TTL_SECONDS)');

    // Aggregator: hash <ns>:vehicle:<id> {rev, state} with a 30-day TTL; an open session adds a deadlines entry.
    const stateKeys = [];
    const p2 = redis.pipeline();
    for (let v = 0; v < COUNT; v += 1) {
      let state = initialState(reading(v, 0));
      for (let n = 0; n < 64; n += 1) state = reduce(state, reading(v, n)).state;
      state = reduce(state, {
        ...reading(v, 64),
        isPluggedIn: true,
        isCharging: true,
        chargingState: 'CHARGING',
      }).state;
      const key = `${sessionsNs}:vehicle:${state.vehicleId}`;
      stateKeys.push(key);
      p2.hset(key, 'rev', 65, 'state', encodeState(state)).expire(key, 30 * DAY_S);
      p2.zadd(`${sessionsNs}:deadlines`, Date.now() + 6 * 3_600_000, state.vehicleId);
    }
    await p2.exec();
    await perKey(
      'aggregator vehicle state (hash)',
      stateKeys,
      'per vehicle, 30 days (VEHICLE_STATE_TTL_SECONDS)',
    );
    const [deadlines] = await memoryUsage(redis, [`${sessionsNs}:deadlines`]);
    rows.push({
      kind: 'aggregator deadline entry',
      keys: 1,
      bytes: deadlines / COUNT,
      note: 'per vehicle with an open session',
    });

    // Notifier fan-out: vehicle directory and plug state, JSON with the state TTL (90 days), as fanout.ts writes.
    const vehicleKeys = [];
    const plugKeys = [];
    const p3 = redis.pipeline();
    for (let v = 0; v < COUNT; v += 1) {
      const r = reading(v, 1);
      let known = null;
      for (const observation of observationsOf({ kind: 'telemetry', record: r }))
        known = mergeVehicle(known, observation);
      const plug = applyPlugReading(null, r).state;
      const vehicleKey = `${notifierNs}:vehicle:${r.vehicleId}`;
      const plugKey = `${notifierNs}:plug:${r.vehicleId}`;
      vehicleKeys.push(vehicleKey);
      plugKeys.push(plugKey);
      p3.set(vehicleKey, JSON.stringify(known), 'EX', 90 * DAY_S);
      p3.set(plugKey, JSON.stringify(plug), 'EX', 90 * DAY_S);
    }
    await p3.exec();
    await perKey('notifier vehicle directory', vehicleKeys, 'per vehicle, 90 days');
    await perKey('notifier plug state', plugKeys, 'per vehicle, 90 days');
    // A plug event fired: <ns>:plug-fired:<eventId> = the event type, with the state TTL (fanout.ts).
    const firedKeys = Array.from(
      { length: COUNT },
      (_, v) => `${notifierNs}:plug-fired:${reading(v, 1).eventId}`,
    );
    const p5 = redis.pipeline();
    for (const key of firedKeys) p5.set(key, JSON.stringify('vehicle.plugged_in'), 'EX', 90 * DAY_S);
    await p5.exec();
    await perKey('notifier plug event fired', firedKeys, 'per plug change, 90 days');

    // Done marks: SET <ns>:done:<message>:<endpoint>:new g<generation> EX 2 days (done-marks.ts).
    const events = Array.from({ length: COUNT }, (_, i) => fromTelemetry(reading(i, 2)));
    const doneKeys = events.map((e) => `${notifierNs}:done:${e.id}:${ENDPOINT_ID}:new`);
    const p4 = redis.pipeline();
    for (const key of doneKeys) p4.set(key, 'g0', 'EX', 2 * DAY_S);
    await p4.exec();
    await perKey('notifier done mark', doneKeys, 'per delivery, 2 days');

    // History: the notifier's own attempt log and message index, each message saved and attempted once.
    const log = createAttemptLog(redis, { namespace: notifierNs });
    const index = createMessageIndex(redis, log, { namespace: notifierNs });
    const at = new Date().toISOString();
    for (let i = 0; i < events.length; i += 100) {
      const batch = events.slice(i, i + 100);
      index.saveMessages(
        batch.map((e) => ({
          id: e.id,
          type: e.type,
          body: JSON.stringify(toBody(e)),
          routing: e.routing,
          sourceTimestampMs: Date.parse(e.timestamp),
          endpointIds: [ENDPOINT_ID],
        })),
      );
      for (const e of batch) {
        index.record({
          messageId: e.id,
          endpointId: ENDPOINT_ID,
          eventType: e.type,
          attempt: 1,
          status: 'succeeded',
          httpStatus: 200,
          durationMs: 12,
          responseExcerpt: '',
          error: null,
          at,
          next: 'done',
          nextAttemptAt: null,
        });
      }
      await log.flush();
    }
    await log.stop();
    const ids = events.map((e) => encodeURIComponent(e.id));
    await perKey(
      'stored message (body, routing)',
      ids.map((id) => `${notifierNs}:message:${id}`),
      'per message, 7 days',
    );
    await perKey(
      'message attempt list (1 attempt)',
      ids.map((id) => `${notifierNs}:attempts:message:${id}`),
      'per message, 7 days',
    );
    await perKey(
      'message log hash (1 endpoint)',
      ids.map((id) => `${notifierNs}:msglog:m:${id}`),
      'per message, 7 days',
    );
    const [msglog] = await memoryUsage(redis, [`${notifierNs}:msglog`]);
    rows.push({
      kind: 'message log index entry',
      keys: 1,
      bytes: msglog / COUNT,
      note: 'per message, capped at 1,000,000',
    });
    const endpoint = encodeURIComponent(ENDPOINT_ID);
    const [endpointIndex] = await memoryUsage(redis, [`${notifierNs}:msglog:endpoint:${endpoint}`]);
    rows.push({
      kind: "endpoint's message index entry",
      keys: 1,
      bytes: endpointIndex / COUNT,
      note: 'per message and endpoint, capped at 200,000 per endpoint',
    });
    const endpointAttemptsKey = `${notifierNs}:attempts:endpoint:${endpoint}`;
    const [endpointAttempts] = await memoryUsage(redis, [endpointAttemptsKey]);
    const entries = await redis.llen(endpointAttemptsKey);
    rows.push({
      kind: "endpoint's attempt list",
      keys: 1,
      bytes: endpointAttempts,
      note: `per endpoint: ${entries} attempts (the cap is 1,000)`,
    });
  } finally {
    for (const ns of [ingressNs, sessionsNs, notifierNs]) await deleteNamespace(redis, ns);
    await redis.quit();
  }

  printTable(
    ['key kind', 'keys', 'bytes each (MEMORY USAGE)', 'what it is held for'],
    rows.map((r) => [r.kind, r.keys, Math.round(r.bytes), r.note]),
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
