'use strict';

/**
 * Bytes per record on each topic, from the fixtures (packages/testing/fixtures) run through the services' own built
 * code: the raw record as the ingress writes it, the canonical record (the normalizer's mapper, encoded with the
 * Avro schema of packages/contracts), a charging session (the aggregator's reducer) with its changelog state, and
 * the notifier's webhook body and retry-tier work item. The input to the capacity model in docs/scaling.md.
 * No Kafka, no registry, no Redis: sizes of what would be written, not of a broker's log (docs/operations.md
 * measured that for the raw topics).
 *
 *   npx tsc -b && node bench/tools/record-sizes.js
 *
 * Per record: key + value + headers (name and value bytes, plus 2 bytes of varints each) + 10 bytes of record
 * framing (attributes, deltas, lengths); the 61-byte batch header is shared by the records of one batch and not
 * counted. Avro values carry the 5-byte schema-registry prefix.
 */
const { Buffer } = require('node:buffer');
const path = require('node:path');
const avro = require('avsc');
const { ROOT } = require('../lib/log');
const { printTable } = require('../lib/report');
const { loadWebhookFixtures } = require('../lib/webhook-requests');

const dist = (rel) => require(path.join(ROOT, rel));
const { RawHeaders, canonicalSchema } = dist('packages/contracts/dist/index.js');
const { mapRawEvent } = dist('services/normalizer/dist/mappers/index.js');
const { initialState, reduce } = dist('services/session-aggregator/dist/session-reducer.js');
const { encodeState } = dist('services/session-aggregator/dist/state-codec.js');
const { changelogValueText } = dist('services/session-aggregator/dist/state-changelog.js');
const { fromTelemetry, fromChargingSession, toBody } = dist(
  'services/notifier/dist/events/customer-events.js',
);
const { encodeWorkItem, workItemKey } = dist('services/notifier/dist/delivery/work-item.js');

const RECORD_FRAMING_BYTES = 10;
const HEADER_FRAMING_BYTES = 2;
const SCHEMA_PREFIX_BYTES = 5;
const ENDPOINT_ID = 'ep_abcdefghijklmnopqrstuvwxyz'; // the notifier's format: ep_ + 26 base32 characters

const bytes = (value) => (value === null || value === undefined ? 0 : Buffer.byteLength(value));
const headerBytes = (headers) =>
  Object.entries(headers).reduce((n, [k, v]) => n + bytes(k) + bytes(v) + HEADER_FRAMING_BYTES, 0);
const recordBytes = ({ key, value, headers = {} }) =>
  bytes(key) + bytes(value) + headerBytes(headers) + RECORD_FRAMING_BYTES;
const mean = (values) => values.reduce((a, b) => a + b, 0) / values.length;

/** The Kafka key the ingress writes: vehicle id, else charger or user id (as bench/normalizer.js). */
function keyOf(provider, body) {
  if (provider === 'smartcar') return body.vehicleId ?? body.data?.vehicle?.id ?? body.data?.user?.id ?? null;
  return body.vehicleId ?? body.chargerId ?? body.user ?? null;
}

const types = new Map();
function avroBytes(topic, value) {
  if (!types.has(topic)) types.set(topic, avro.Type.forSchema(JSON.parse(canonicalSchema(topic))));
  return types.get(topic).toBuffer(value).length + SCHEMA_PREFIX_BYTES;
}

/** Every published fixture: raw record, canonical record, webhook body and work item. */
function perFixture() {
  const fixtures = loadWebhookFixtures();
  const entries = [
    ...fixtures.smartcar.map((f) => ({ provider: 'smartcar', name: f.name, text: f.text })),
    ...fixtures.telematica.map((f) => ({
      provider: 'telematica',
      name: f.name,
      text: f.body.toString('utf8'),
    })),
  ];
  return entries.map(({ provider, name, text }) => {
    const body = JSON.parse(text);
    const eventType = provider === 'smartcar' ? body.eventType : body.type;
    const eventId = provider === 'smartcar' ? body.eventId : `msg_${'0'.repeat(32)}`;
    const receivedAt = Date.parse('2026-12-07T00:00:00.000Z');
    const raw = {
      key: keyOf(provider, body),
      value: text,
      headers: {
        [RawHeaders.provider]: provider,
        [RawHeaders.eventId]: eventId,
        [RawHeaders.eventType]: eventType,
        [RawHeaders.receivedAt]: new Date(receivedAt).toISOString(),
        [RawHeaders.contentType]: 'application/json',
      },
    };
    const mapped = mapRawEvent({ provider, providerEventId: eventId, eventType, receivedAt, body });
    const canonicalValueBytes = avroBytes(mapped.topic, mapped.value);
    const canonical = recordBytes({
      key: mapped.key,
      value: 'x'.repeat(canonicalValueBytes),
      headers: { [RawHeaders.eventId]: mapped.value.eventId, [RawHeaders.provider]: provider },
    });
    const row = {
      fixture: path.basename(path.dirname(name)) + '/' + path.basename(name),
      provider,
      rawBody: bytes(text),
      rawBodyCompact: bytes(JSON.stringify(body)),
      rawRecord: recordBytes(raw),
      canonicalTopic: mapped.topic,
      canonicalValue: canonicalValueBytes,
      canonicalRecord: canonical,
    };
    if (mapped.topic === 'ev.vehicle-telemetry.v1') {
      const event = fromTelemetry(mapped.value);
      Object.assign(row, webhook(event, 'vehicle.telemetry'));
    }
    return row;
  });
}

/** The webhook body, the work item a retry tier (or a deliveries topic) holds for it, and its record. */
function webhook(event, type) {
  const body = JSON.stringify(toBody(event));
  const item = {
    messageId: event.id,
    endpointId: ENDPOINT_ID,
    type,
    body,
    routing: event.routing,
    attempt: 2,
    dueAt: Date.parse('2026-12-07T00:00:05.000Z'),
    sourceTimestampMs: Date.parse('2026-12-07T00:00:00.000Z'),
    reason: 'retry',
  };
  const value = encodeWorkItem(item);
  return {
    webhookBody: bytes(body),
    workItem: value.length,
    workItemRecord: recordBytes({ key: workItemKey(item), value }),
  };
}

/**
 * A vehicle whose state carries 64 fingerprints (the steady state), then the e2e bench's charging scenario
 * (plugged, charging x 3, stopped): the state text per reading (Redis value and changelog record), the session
 * changes in Avro, and their webhooks.
 */
function sessionScenario() {
  const fixtures = loadWebhookFixtures().telematica.map((f) => JSON.parse(f.body.toString('utf8')));
  const body = fixtures.find((b) => b.type === 'vehicle.plug-status') ?? fixtures[0];
  const base = mapRawEvent({
    provider: 'telematica',
    providerEventId: 'msg_base',
    eventType: body.type,
    receivedAt: Date.parse('2026-12-07T00:00:00.000Z'),
    body,
  }).value;
  let at = Date.parse('2026-12-07T00:00:00.000Z');
  let n = 0;
  const reading = (fields) => {
    n += 1;
    at += 60_000;
    return {
      ...base,
      eventId: `msg_${String(n).padStart(32, '0')}`,
      occurredAt: at,
      receivedAt: at,
      ...fields,
    };
  };
  let state = initialState(base);
  for (let i = 0; i < 64; i += 1)
    state = reduce(state, reading({ isPluggedIn: false, isCharging: false })).state;
  const steps = [
    { isPluggedIn: true, isCharging: false, chargingState: 'NOT_CHARGING', stateOfChargePercent: 40 },
    {
      isPluggedIn: true,
      isCharging: true,
      chargingState: 'CHARGING',
      stateOfChargePercent: 45,
      chargePowerKw: 11,
    },
    {
      isPluggedIn: true,
      isCharging: true,
      chargingState: 'CHARGING',
      stateOfChargePercent: 55,
      chargePowerKw: 11,
    },
    {
      isPluggedIn: true,
      isCharging: true,
      chargingState: 'CHARGING',
      stateOfChargePercent: 65,
      chargePowerKw: 11,
    },
    { isPluggedIn: false, isCharging: false, chargingState: 'NOT_CHARGING', stateOfChargePercent: 65 },
  ];
  const states = [];
  const sessions = [];
  for (const step of steps) {
    const result = reduce(state, reading(step));
    state = result.state;
    const text = encodeState(state);
    states.push({
      redisValue: bytes(text),
      changelogRecord: recordBytes({
        key: state.vehicleId,
        value: changelogValueText({ rev: 100, deadline: at + 6 * 3_600_000, writtenAt: at }, text),
      }),
    });
    for (const change of result.changes) {
      const value = avroBytes('ev.charging-sessions.v1', change);
      const event = fromChargingSession(change, at);
      sessions.push({
        change: change.change,
        value,
        record: recordBytes({ key: change.vehicleId, value: 'x'.repeat(value) }),
        ...webhook(event, event.type),
      });
    }
  }
  return { readings: steps.length, states, sessions };
}

function main() {
  const rows = perFixture();
  printTable(
    [
      'fixture',
      'raw body',
      'compact',
      'raw record',
      'canonical topic',
      'Avro value',
      'canonical record',
      'webhook body',
      'work item record',
    ],
    rows.map((r) => [
      r.fixture,
      r.rawBody,
      r.rawBodyCompact,
      r.rawRecord,
      r.canonicalTopic,
      r.canonicalValue,
      r.canonicalRecord,
      r.webhookBody ?? '-',
      r.workItemRecord ?? '-',
    ]),
  );
  const mix = (provider, pick) => mean(rows.filter((r) => r.provider === provider).map(pick));
  const half = (pick) => (mix('smartcar', pick) + mix('telematica', pick)) / 2;
  const telemetry = rows.filter((r) => r.webhookBody !== undefined);
  const summary = {
    'raw record, 50/50 mix (the benches)': half((r) => r.rawRecord),
    'raw record, every fixture once': mean(rows.map((r) => r.rawRecord)),
    'canonical record, 50/50 mix': half((r) => r.canonicalRecord),
    'telemetry share of canonical records, 50/50 mix': half((r) =>
      r.canonicalTopic === 'ev.vehicle-telemetry.v1' ? 1 : 0,
    ),
    'vehicle.telemetry webhook body, mean': mean(telemetry.map((r) => r.webhookBody)),
    'vehicle.telemetry work item record, mean': mean(telemetry.map((r) => r.workItemRecord)),
  };
  const scenario = sessionScenario();
  summary['aggregator state (Redis value), mean over the scenario'] = mean(
    scenario.states.map((s) => s.redisValue),
  );
  summary['changelog record per reading, mean'] = mean(scenario.states.map((s) => s.changelogRecord));
  summary['session record, mean'] = mean(scenario.sessions.map((s) => s.record));
  summary['session changes per reading (scenario)'] = scenario.sessions.length / scenario.readings;
  summary['charging_session.* webhook body, mean'] = mean(scenario.sessions.map((s) => s.webhookBody));
  summary['charging_session.* work item record, mean'] = mean(scenario.sessions.map((s) => s.workItemRecord));
  printTable(
    ['', 'bytes (or ratio)'],
    Object.entries(summary).map(([k, v]) => [k, Number.isInteger(v) ? v : v.toFixed(2)]),
  );
  process.stdout.write(
    `Session scenario (the e2e bench's): ${scenario.sessions.map((s) => `${s.change} ${s.record} B`).join(', ')}\n`,
  );
}

main();
