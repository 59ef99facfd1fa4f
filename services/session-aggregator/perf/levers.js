'use strict';

/**
 * The aggregator's performance levers side by side, in one process against a redis-server of its own (so
 * that its CPU is only ours): the baseline build (perf/baseline/dist, from `perf/baseline.sh <commit>`) and
 * the current one (dist/), alternated round by round on the same readings. Kafka is left out (a producer
 * that only counts the bytes it is given): what is compared is this service's own CPU and Redis's.
 *
 *   bash services/session-aggregator/perf/baseline.sh <commit> && npx tsc -b services/session-aggregator
 *   node services/session-aggregator/perf/levers.js [vehicles=2000] [rounds=2] [warm readings per vehicle=64]
 *
 * LEVERS_ONLY=current (or baseline, current+cache) runs only that build's chunk handler (e.g. under --cpu-prof);
 * LEVERS_CHUNK_ONLY=1 runs the three chunk handlers and nothing else.
 * Reports, per lever, CPU µs per reading of this process and of Redis, and the ratio to the baseline.
 */
const { Buffer } = require('node:buffer');
const path = require('node:path');
const { randomUUID } = require('node:crypto');
const fs = require('node:fs');
const avro = require('avsc');
const Redis = require('ioredis');
const { Registry } = require('prom-client');
const { Topics, canonicalSchema } = require('@ampflow/contracts');
const { createAvroCodec } = require('@ampflow/kafka');
const { startRedisProcess } = require('@ampflow/testing');
const pino = require('pino');

const HERE = __dirname;
const load = (dir, name) => require(path.join(dir, name));
const BUILDS = {
  baseline: path.join(HERE, 'baseline', 'dist'),
  current: path.join(HERE, '..', 'dist'),
};
const VEHICLES = Number(process.argv[2] ?? 2000);
const ROUNDS = Number(process.argv[3] ?? 2);
/** Readings per vehicle applied before the measured 20, so that states hold 64 recent ids as in production. */
const WARM_STEPS = Number(process.argv[4] ?? 64);
const CHUNK = 500;
const READINGS_PER_VEHICLE = 20;
const PATTERN = [
  ...['idle-plugged', ...Array(8).fill('charging'), 'stopped', 'unplugged'],
  ...['idle-plugged', ...Array(6).fill('charging'), 'full', 'unplugged'],
];

/** As bench/aggregator.js: every VehicleTelemetry field present, the same charging pattern. */
function readingOf(index, step, runId) {
  const provider = index % 2 === 0 ? 'smartcar' : 'telematica';
  const providerVehicleId = `${runId}-v${index}`;
  const phase = PATTERN[step % PATTERN.length];
  const occurredAt = 1_700_000_000_000 + (index % 3_600) * 1_000 + step * 300_000;
  const charging = phase === 'charging';
  const soc = phase === 'full' ? 100 : Math.min(99, 30 + step * 4);
  const plugged = phase !== 'unplugged';
  const power = charging ? 7.4 + (step % 3) * 1.8 : 0;
  const sessionStart = step % PATTERN.length < 11 ? 1 : 12;
  return {
    eventId: randomUUID(),
    provider,
    vehicleId: `${provider}:${providerVehicleId}`,
    providerVehicleId,
    userId: `${provider}:${runId}-u${Math.floor(index / 2)}`,
    occurredAt,
    receivedAt: occurredAt + 1_500,
    sourceEventType: provider === 'smartcar' ? 'VEHICLE_STATE' : 'vehicle.charging-status',
    isCharging: charging,
    isPluggedIn: plugged,
    chargingState: charging ? 'CHARGING' : phase === 'full' ? 'FULLY_CHARGED' : 'NOT_CHARGING',
    stateOfChargePercent: soc,
    rangeKm: soc * 4.2,
    chargePowerKw: plugged ? power : null,
    chargeVoltageV: charging ? 230 : null,
    chargeCurrentA: charging ? 10 : null,
    energyAddedKwh: charging || phase === 'full' || phase === 'stopped' ? (step - sessionStart) * 0.6 : null,
    chargeLimitPercent: 100,
    targetSocPercent: 100,
    timeToCompleteMinutes: charging ? (100 - soc) * 3 : null,
    batteryCapacityKwh: step % 5 === 0 ? 77 : null,
    location: { latitude: 48.1, longitude: 11.5 },
    odometerKm: 10_000,
    vehicle: null,
    triggers: charging ? ['CHARGE_STATE'] : [],
  };
}

const TELEMETRY_ID = 1;
const SESSIONS_ID = 2;
const types = {
  [TELEMETRY_ID]: avro.Type.forSchema(JSON.parse(canonicalSchema(Topics.vehicleTelemetry))),
  [SESSIONS_ID]: avro.Type.forSchema(JSON.parse(canonicalSchema(Topics.chargingSessions))),
};

function wire(value) {
  const body = types[TELEMETRY_ID].toBuffer(value);
  const header = Buffer.alloc(5);
  header.writeInt32BE(TELEMETRY_ID, 1);
  return Buffer.concat([header, body]);
}

/** Chunks of consumed records, step-major as the bench's pre-fill (each chunk ~500 different vehicles). */
function chunksOf(runId, fromStep, toStep) {
  const records = [];
  for (let step = fromStep; step < toStep; step++) {
    for (let v = 0; v < VEHICLES; v++) {
      records.push({
        topic: 'telemetry',
        partition: 0,
        message: {
          key: null,
          value: wire(readingOf(v, step, runId)),
          headers: {},
          offset: String(records.length),
        },
      });
    }
  }
  const chunks = [];
  for (let i = 0; i < records.length; i += CHUNK) chunks.push(records.slice(i, i + CHUNK));
  return chunks;
}

function procCpuMicros(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1e6) / 100; // USER_HZ = 100
}

function cpuMicros() {
  const u = process.cpuUsage();
  return u.user + u.system;
}

async function measure(fn, redisPid) {
  const c0 = cpuMicros();
  const r0 = procCpuMicros(redisPid);
  const t0 = process.hrtime.bigint();
  const units = await fn();
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  return { units, self: cpuMicros() - c0, redis: procCpuMicros(redisPid) - r0, wallMs };
}

async function main() {
  const server = await startRedisProcess();
  const redisPid = Number(
    fs
      .readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .find((p) => {
        try {
          const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
          return cmd.includes('redis-server') && cmd.includes(`:${server.port}`);
        } catch {
          return false;
        }
      }),
  );
  if (!redisPid) throw new Error('the redis-server of this run was not found in /proc');
  const redis = new Redis(server.url, { enableAutoPipelining: true });
  const logger = pino({ level: 'silent' });
  const codec = createAvroCodec({
    client: { register: async () => SESSIONS_ID, typeOf: async (id) => types[id] },
    logger,
  });
  await codec.register('sessions', Topics.chargingSessions);
  const settings = { inactivityTimeoutMs: 6 * 3600_000, updateMinIntervalMs: 0, recentEventIdLimit: 64 };
  const results = {};
  const add = (name, m) => {
    const r = (results[name] ??= { units: 0, self: 0, redis: 0, wallMs: 0, bytes: 0 });
    for (const k of ['units', 'self', 'redis', 'wallMs']) r[k] += m[k];
    r.bytes += m.bytes ?? 0;
  };

  async function chunkRun(variant, ns, warm, chunks) {
    // `current+cache`: the current build with the state cache the app gives it.
    const build = variant.replace(/\+cache$/, '');
    const { createRedisSessionStore } = load(BUILDS[build], 'redis-session-store.js');
    const { createSessionChunkHandler } = load(BUILDS[build], 'session-chunk.js');
    const { createAggregatorMetrics } = load(BUILDS[build], 'metrics.js');
    const cache = variant.endsWith('+cache')
      ? load(BUILDS[build], 'state-cache.js').createStateCache({
          maxEntries: 20_000,
          maxAgeMs: 600_000,
          deadlineMarginMs: 60_000,
        })
      : undefined;
    const store = createRedisSessionStore(redis, { namespace: ns, stateTtlSeconds: 7 * 3600 });
    await redis.set(`${ns}:restored`, 'e1');
    let bytes = 0;
    const handle = createSessionChunkHandler({
      codec,
      store,
      producer: {
        send: async (_topic, messages) => {
          for (const m of messages) bytes += m.value.length;
        },
        messageSizeLimit: async () => 1_048_576,
      },
      settings,
      topics: { sessions: 'sessions', changelog: 'changelog' },
      now: Date.now,
      metrics: createAggregatorMetrics(new Registry(), async () => 0),
      stateReset: () => new Error('reset'),
      cache,
    });
    for (const chunk of warm) await (await handle(chunk)).afterSend?.();
    bytes = 0;
    const m = await measure(async () => {
      let n = 0;
      for (const chunk of chunks) {
        const outcome = await handle(chunk);
        if (outcome.deadLetters.length > 0) throw outcome.deadLetters[0].error;
        // Builds that send the changelog with the changes (one send) return its records as outputs.
        for (const o of outcome.outputs) if (o.topic === 'changelog') bytes += o.message.value.length;
        await outcome.afterSend?.();
        n += chunk.length;
      }
      return n;
    }, redisPid);
    return { ...m, bytes };
  }

  /** The store alone, on the states a full run left: load + save of every chunk's vehicles. */
  async function storeRun(build, op, ns, idChunks, stateFormat) {
    const { createRedisSessionStore } = load(BUILDS[build], 'redis-session-store.js');
    const store = createRedisSessionStore(redis, { namespace: ns, stateTtlSeconds: 7 * 3600 });
    const loaded = [];
    for (const ids of idChunks) loaded.push(await store.load(ids));
    return measure(async () => {
      let n = 0;
      for (let i = 0; i < idChunks.length; i++) {
        const ids = idChunks[i];
        if (op === 'load') await store.load(ids);
        else {
          const writes = ids.map((id) => {
            const s = loaded[i].states.get(id);
            return { vehicleId: id, expectedRev: s.rev, state: stateFormat(s.state), deadline: null };
          });
          const { lost } = await store.save('e1', writes);
          if (lost.length > 0) throw new Error(`${op}: ${lost.length} lost`);
          for (const w of writes) loaded[i].states.get(w.vehicleId).rev += 1;
        }
        n += ids.length;
      }
      return n;
    }, redisPid);
  }

  const { fingerprintOf } = load(BUILDS.current, 'recent-events.js');
  const { encodeState, decodeState } = load(BUILDS.current, 'state-codec.js');
  // An old-format state of the same vehicle: 64 UUID-like event ids instead of their fingerprints.
  const oldFormat = (state) => {
    const rest = { ...state };
    delete rest.recentEvents;
    return {
      ...rest,
      recentEventIds: Array.from(
        { length: 64 },
        (_, i) => `smartcar:${i}-9b7f3c1e-0f5e-4d0b-a7a2-2d4c6c1e8f10`,
      ),
    };
  };

  for (let round = 0; round < ROUNDS; round++) {
    const runId = `r${round}-${Math.random().toString(36).slice(2, 8)}`;
    const warm = chunksOf(runId, 0, WARM_STEPS);
    const chunks = chunksOf(runId, WARM_STEPS, WARM_STEPS + READINGS_PER_VEHICLE);
    // 1. The whole chunk handler (decode, load, reduce, encode, changelog bytes, save), baseline vs current.
    const variants = ['baseline', 'current', 'current+cache'];
    for (const build of round % 2 === 0 ? variants : [...variants].reverse()) {
      if (process.env.LEVERS_ONLY && build !== process.env.LEVERS_ONLY) continue;
      add(`chunk handler: ${build}`, await chunkRun(build, `lv:${runId}:${build}`, warm, chunks));
    }
    if (process.env.LEVERS_ONLY || process.env.LEVERS_CHUNK_ONLY) continue;
    // 2. Store round trips alone, on the same new-format states: MULTI + a script per vehicle vs one script.
    const idChunks = [];
    const all = [];
    for (let v = 0; v < VEHICLES; v++) all.push(readingOf(v, 0, runId).vehicleId);
    for (let i = 0; i < all.length; i += CHUNK) idChunks.push(all.slice(i, i + CHUNK));
    const ns = `lv:${runId}:current`;
    for (const build of round % 2 === 0 ? ['baseline', 'current'] : ['current', 'baseline']) {
      add(`Redis load (new-format states): ${build}`, await storeRun(build, 'load', ns, idChunks, (s) => s));
      add(`Redis save (new-format states): ${build}`, await storeRun(build, 'save', ns, idChunks, (s) => s));
    }
    // 3. State size: the current store's one-script save of old-format vs new-format states.
    add(
      'Redis save, one script: old-format states',
      await storeRun('current', 'save', ns, idChunks, oldFormat),
    );
    add(
      'Redis save, one script: new-format states',
      await storeRun('current', 'save', ns, idChunks, (s) => s),
    );
    // 4. Encoding alone: JSON of a state, old and new format, and the fingerprint.
    const sample = (
      await load(BUILDS.current, 'redis-session-store.js')
        .createRedisSessionStore(redis, { namespace: ns, stateTtlSeconds: 3600 })
        .load(all.slice(0, 1))
    ).states.get(all[0]).state;
    const old = oldFormat(sample);
    const N = 20_000;
    add('encode+decode state: old format', {
      ...(await measure(async () => {
        for (let i = 0; i < N; i++) JSON.parse(JSON.stringify(old));
        return N;
      }, redisPid)),
      bytes: Buffer.byteLength(JSON.stringify(old)) * N,
    });
    add('encode+decode state: new format', {
      ...(await measure(async () => {
        for (let i = 0; i < N; i++) decodeState(encodeState(sample));
        return N;
      }, redisPid)),
      bytes: Buffer.byteLength(encodeState(sample)) * N,
    });
    add('fingerprint of an event id', {
      ...(await measure(async () => {
        for (let i = 0; i < N; i++) fingerprintOf(`smartcar:${i}-9b7f3c1e-0f5e-4d0b-a7a2-2d4c6c1e8f10`);
        return N;
      }, redisPid)),
    });
    const keys = await redis.keys(`lv:${runId}:*`);
    for (let i = 0; i < keys.length; i += 1000) await redis.del(...keys.slice(i, i + 1000));
  }

  const rows = Object.entries(results).map(([name, r]) => ({
    name,
    selfUs: r.self / r.units,
    redisUs: r.redis / r.units,
    wallUs: (r.wallMs * 1000) / r.units,
    bytes: r.bytes / r.units,
  }));
  process.stdout.write(
    `${VEHICLES} vehicles x ${READINGS_PER_VEHICLE} readings measured after ${WARM_STEPS} applied, chunks of ${CHUNK}, ${ROUNDS} rounds alternated; ` +
      `node ${process.version}; CPU µs per reading (per state for the store and encoding rows)\n`,
  );
  const pad = (s, n) => String(s).padEnd(n);
  const num = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '-');
  process.stdout.write(
    `${pad('lever', 52)}${pad('self µs', 10)}${pad('redis µs', 10)}${pad('wall µs', 10)}bytes\n`,
  );
  for (const r of rows) {
    process.stdout.write(
      `${pad(r.name, 52)}${pad(num(r.selfUs), 10)}${pad(num(r.redisUs), 10)}${pad(num(r.wallUs), 10)}${r.bytes ? num(r.bytes, 0) : ''}\n`,
    );
  }
  await redis.quit();
  await server.stop();
}

main().catch((err) => {
  process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
