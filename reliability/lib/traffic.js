'use strict';
/* global structuredClone */

/**
 * Signed Telematica webhooks at a steady rate (and, for the vehicles of a plan that says so, Smartcar ones), sent
 * like a provider sends them: every event has a unique id (`svix-id`; Smartcar's `eventId`), a non-2xx answer or a
 * connection error is retried with the same id (re-signed, as Svix does) until it is acknowledged or the run
 * gives up. Each vehicle sends a charging reading then a stopped reading (in that
 * order, the second only after the first was acknowledged), so the aggregator opens and closes one session per
 * vehicle. Every request is recorded: status, answer time, the answers' 5xx codes.
 */
const { randomUUID, randomInt } = require('node:crypto');
const { setTimeout: sleep } = require('node:timers/promises');
const { Pool } = require('undici');
const { fixtureBytes, smartcarHeaders, svixHeaders } = require('@ampflow/testing');

const TEMPLATE = JSON.parse(fixtureBytes('telematica/vehicle-charging-status.json').toString('utf8'));
const SMARTCAR_TEMPLATE = JSON.parse(fixtureBytes('smartcar/vehicle-state-v4.json').toString('utf8'));
const VIN_CHARS = 'ABCDEFGHJKLMNPRSTUVWXYZ0123456789';

/** A random 17-character VIN (no I, O, Q), so the log check can look for exactly the VINs that were sent. */
function randomVin() {
  let vin = '';
  for (let i = 0; i < 17; i++) vin += VIN_CHARS[randomInt(VIN_CHARS.length)];
  return vin;
}

/** The body of one reading of `vehicle` (step 0 charging, step 1 stopped) at provider time `at`. */
function readingBody(vehicle, step, at) {
  const body = structuredClone(TEMPLATE);
  const iso = new Date(at).toISOString();
  body.vehicleId = vehicle.id;
  body.currentState = step === 0 ? 'Charging' : 'Stopped';
  const battery = body.vehicleState.batteryState;
  battery.isCharging = step === 0;
  battery.isPlugged = true;
  battery.soc = 40 + step * 10;
  battery.lastUpdated = iso;
  body.vehicleState.location.lastUpdated = iso;
  body.vehicleState.odo.lastUpdated = iso;
  body.vehicleState.staticAttributes.vin = vehicle.vin;
  return JSON.stringify(body);
}

/**
 * The body of one Smartcar `VEHICLE_STATE` reading (the v4 envelope) of `vehicle` with event id `id`: step 0
 * charging, step 1 stopped, every signal read at provider time `at`.
 */
function smartcarReadingBody(vehicle, step, at, id) {
  const body = structuredClone(SMARTCAR_TEMPLATE);
  body.eventId = id;
  body.vehicleId = vehicle.id;
  body.data.vehicle.id = vehicle.id;
  body.data.vehicle.vin = vehicle.vin;
  body.meta.deliveryId = id;
  body.meta.deliveredAt = at + 1_000;
  const values = {
    'charge-ischarging': step === 0,
    'charge-ischargingcableconnected': true,
    'charge-detailedchargingstatus': step === 0 ? 'CHARGING' : 'NOT_CHARGING',
    'tractionbattery-stateofcharge': 40 + step * 10,
  };
  for (const signal of body.data.signals) {
    if (signal.meta) signal.meta = { ...signal.meta, oemUpdatedAt: at, retrievedAt: at + 120 };
    if (Object.hasOwn(values, signal.code)) signal.body.value = values[signal.code];
  }
  return JSON.stringify(body);
}

/**
 * A ledger of everything sent through the ingress: `events` by id, each `{ id, vehicleId, vin, step, tries,
 * acked, statuses }`; `answers` (every HTTP answer: status, ms) and the VINs and signatures sent (for the log
 * check).
 */
function createLedger() {
  return {
    events: new Map(),
    vehicles: [],
    answers: { count: 0, byStatus: {}, errors: {}, slowestMs: 0, fiveXx: [] },
    sentVins: new Set(),
    sentSignatures: new Set(),
  };
}

function noteAnswer(ledger, status, ms, code) {
  const a = ledger.answers;
  a.count += 1;
  a.byStatus[status] = (a.byStatus[status] ?? 0) + 1;
  if (ms > a.slowestMs) a.slowestMs = ms;
  if (status >= 500 && a.fiveXx.length < 10_000) a.fiveXx.push({ status, code, at: Date.now() });
}

/**
 * A fixed input for `drive`: `vehicles` vehicles (id, VIN), each with a charging and a stopped reading whose
 * event ids and provider times are chosen now, so that two runs (a clean one and one with faults) send exactly
 * the same webhooks. Provider times start `agoMs` in the past, a reading per vehicle every `spacingMs`, the
 * stopped reading `stepMs` after the charging one.
 */
function planReadings({
  vehicles,
  tag,
  smartcarEvery = 0,
  agoMs = 600_000,
  spacingMs = 10,
  stepMs = 30_000,
}) {
  const startAt = Date.now() - agoMs;
  return Array.from({ length: vehicles }, (_, i) => {
    // Every `smartcarEvery`-th vehicle is a Smartcar one: UUIDs for its id and event ids, as Smartcar's.
    const smartcar = smartcarEvery > 0 && i % smartcarEvery === smartcarEvery - 1;
    return {
      provider: smartcar ? 'smartcar' : 'telematica',
      id: smartcar ? randomUUID() : `rel-${tag}-${randomUUID().slice(0, 12)}`,
      vin: randomVin(),
      readings: [0, 1].map((step) => ({
        id: smartcar ? randomUUID() : `msg_${randomUUID().replace(/-/g, '')}`,
        at: startAt + i * spacingMs + step * stepMs,
      })),
    };
  });
}

/**
 * Sends `vehicles` x 2 readings at about `rate` requests/s to `baseUrl` (or spread over `baseUrls`, several
 * instances behind no balancer: each try of a reading goes to the next one, so a retry after a connection
 * error reaches another instance); resolves when every reading was acknowledged or `giveUpMs` after its first
 * try passed. With `plan` (`planReadings`) the vehicles, event ids and provider times are the plan's; its
 * Smartcar readings are signed with `smartcarToken`.
 */
async function drive({
  baseUrl,
  baseUrls = [baseUrl],
  secret,
  smartcarToken,
  ledger,
  vehicles,
  plan,
  rate,
  giveUpMs = 120_000,
  connections = 128,
  tag,
}) {
  const pools = baseUrls.map(
    (url) =>
      new Pool(url, {
        connections: Math.ceil(connections / baseUrls.length),
        pipelining: 1,
        headersTimeout: 30_000,
        bodyTimeout: 30_000,
      }),
  );
  const list =
    plan ??
    Array.from({ length: vehicles }, () => ({
      id: `rel-${tag}-${randomUUID().slice(0, 12)}`,
      vin: randomVin(),
    }));
  ledger.vehicles.push(...list);
  for (const v of list) ledger.sentVins.add(v.vin);
  const spacingMs = 1000 / Math.max(rate / 2, 0.001);

  const sendOne = async (vehicle, step, spread) => {
    const planned = vehicle.readings?.[step];
    const at = planned?.at ?? Date.now();
    const id = planned?.id ?? `msg_${randomUUID().replace(/-/g, '')}`;
    const provider = vehicle.provider ?? 'telematica';
    const event = {
      id,
      provider,
      vehicleId: vehicle.id,
      vin: vehicle.vin,
      step,
      tries: 0,
      acked: false,
      statuses: [],
      tag,
    };
    ledger.events.set(id, event);
    const smartcar = provider === 'smartcar';
    const body = smartcar ? smartcarReadingBody(vehicle, step, at, id) : readingBody(vehicle, step, at);
    const route = `/webhooks/${provider}`;
    const giveUpAt = Date.now() + giveUpMs;
    let backoffMs = 250;
    while (!event.acked && Date.now() < giveUpAt) {
      const headers = smartcar ? smartcarHeaders(body, smartcarToken) : svixHeaders(body, secret, { id });
      ledger.sentSignatures.add(
        smartcar ? headers['sc-signature'] : headers['svix-signature'].replace(/^v1,/, ''),
      );
      const pool = pools[(spread + event.tries) % pools.length];
      event.tries += 1;
      const t0 = Date.now();
      try {
        const res = await pool.request({ path: route, method: 'POST', headers, body });
        const text = await res.body.text();
        const ms = Date.now() - t0;
        let code;
        try {
          code = JSON.parse(text)?.error?.code;
        } catch {
          code = undefined;
        }
        noteAnswer(ledger, res.statusCode, ms, code);
        event.statuses.push(res.statusCode);
        if (res.statusCode >= 200 && res.statusCode < 300) {
          event.acked = true;
          event.ackedAt = Date.now();
          break;
        }
      } catch (err) {
        const key = err.code ?? err.message;
        ledger.answers.errors[key] = (ledger.answers.errors[key] ?? 0) + 1;
        event.statuses.push(key);
      }
      await sleep(backoffMs);
      backoffMs = Math.min(backoffMs * 2, 4_000);
    }
    return event.acked;
  };

  const t0 = Date.now();
  const chains = [];
  for (let i = 0; i < list.length; i++) {
    const wait = t0 + i * spacingMs - Date.now();
    if (wait > 0) await sleep(wait);
    const vehicle = list[i];
    chains.push(
      (async () => {
        // A second reading only after the first was acknowledged, and with a later provider time.
        if (await sendOne(vehicle, 0, i)) {
          await sleep(200);
          await sendOne(vehicle, 1, i + 1);
        }
      })(),
    );
  }
  await Promise.all(chains);
  await Promise.all(pools.map((pool) => pool.close().catch(() => {})));
  return list;
}

/** Events of `ledger` sent with `tag` (an experiment's own). */
function eventsOf(ledger, tag) {
  return [...ledger.events.values()].filter((e) => e.tag === tag);
}

module.exports = {
  createLedger,
  drive,
  planReadings,
  eventsOf,
  readingBody,
  smartcarReadingBody,
  randomVin,
  noteAnswer,
};
