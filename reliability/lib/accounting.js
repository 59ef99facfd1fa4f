'use strict';

const { Buffer } = require('node:buffer');

/**
 * Where the suite looks for what was acknowledged: a tap consumer (its own group) on the raw Telematica topic,
 * the telemetry topic and the sessions topic, counting records per id from the record headers alone (no Avro
 * decoding: `event-id` on raw and canonical records, `<sessionId>:<version>` on session changes), and the
 * customer receivers (lib/receivers.js). `account()` turns that into the table's figures for one experiment.
 */
const { Kafka, logLevel } = require('kafkajs');
const { messageId } = require('@ampflow/contracts');

/** The notifier's `webhook-id` of a customer event (the contract's `messageId`, packages/contracts). */
const webhookId = messageId;

function header(message, name) {
  const value = message.headers?.[name];
  if (value === undefined || value === null) return undefined;
  return Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
}

/**
 * Starts the tap on `topics.raw` (Telematica's raw topic; `topics.rawSmartcar` too when given), `topics.telemetry`
 * and `topics.sessions`; `counts.raw` / `counts.telemetry`: id -> records (`counts.rawProvider`: raw id -> the
 * provider whose topic it is on); `counts.sessions`: vehicleId -> versions ->
 * records; `counts.sessionCopies`: `<sessionId>:<version>` -> the Avro body of each copy (hex, the 5-byte
 * Confluent header with its schema id cut off) -> copies, to compare the sessions of two runs record by record.
 */
async function startTap({ brokers, topics, groupId }) {
  const kafka = new Kafka({ clientId: 'reliability-tap', brokers, logLevel: logLevel.NOTHING });
  const counts = {
    raw: new Map(),
    rawProvider: new Map(),
    telemetry: new Map(),
    sessions: new Map(),
    sessionCopies: new Map(),
    sessionRecords: 0,
  };
  const consumer = kafka.consumer({
    groupId,
    maxWaitTimeInMs: 200,
    retry: { retries: 1_000, maxRetryTime: 5_000 },
  });
  await consumer.connect();
  const rawTopics = [topics.raw, topics.rawSmartcar].filter(Boolean);
  await consumer.subscribe({
    topics: [...rawTopics, topics.telemetry, topics.sessions],
    fromBeginning: true,
  });
  await consumer.run({
    eachMessage: async ({ topic, message }) => {
      const id = header(message, 'event-id');
      if (id === undefined) return;
      if (rawTopics.includes(topic)) {
        counts.raw.set(id, (counts.raw.get(id) ?? 0) + 1);
        counts.rawProvider.set(id, topic === topics.raw ? 'telematica' : 'smartcar');
      } else if (topic === topics.telemetry) counts.telemetry.set(id, (counts.telemetry.get(id) ?? 0) + 1);
      else {
        counts.sessionRecords += 1;
        const key = message.key?.toString('utf8') ?? '';
        let versions = counts.sessions.get(key);
        if (!versions) counts.sessions.set(key, (versions = new Map()));
        const version = id.slice(id.lastIndexOf(':') + 1);
        versions.set(version, (versions.get(version) ?? 0) + 1);
        let copies = counts.sessionCopies.get(id);
        if (!copies) counts.sessionCopies.set(id, (copies = new Map()));
        const body = message.value ? message.value.subarray(5).toString('hex') : '';
        copies.set(body, (copies.get(body) ?? 0) + 1);
      }
    },
  });
  return { counts, stop: () => consumer.disconnect().catch(() => {}) };
}

/**
 * What happened to `events` (the ledger's events of one experiment): per stage the acknowledged ids found,
 * missing and repeated. Stages: raw topic, telemetry topic, sessions (a STARTED and an ENDED change per vehicle
 * whose two readings were acknowledged), and the receiver (one `vehicle.telemetry` webhook per reading) when
 * `receiver` is given.
 */
function account({ events, tap, receiver }) {
  const acked = events.filter((e) => e.acked);
  const stage = () => ({ expected: 0, found: 0, missing: 0, records: 0, repeated: 0, missingIds: [] });
  const stages = { raw: stage(), telemetry: stage(), sessions: stage() };
  if (receiver) stages.delivered = stage();
  const note = (s, id, n) => {
    s.expected += 1;
    if (n > 0) {
      s.found += 1;
      s.records += n;
      s.repeated += n - 1;
    } else {
      s.missing += 1;
      if (s.missingIds.length < 20) s.missingIds.push(id);
    }
  };
  const byVehicle = new Map();
  for (const e of acked) {
    note(stages.raw, e.id, tap.counts.raw.get(e.id) ?? 0);
    const provider = e.provider ?? 'telematica';
    const canonical = `${provider}:${e.id}`;
    note(stages.telemetry, e.id, tap.counts.telemetry.get(canonical) ?? 0);
    if (receiver)
      note(stages.delivered, e.id, receiver.received.get(webhookId(canonical, 'vehicle.telemetry')) ?? 0);
    const vehicle = `${provider}:${e.vehicleId}`;
    byVehicle.set(vehicle, (byVehicle.get(vehicle) ?? 0) + 1);
  }
  for (const [vehicle, n] of byVehicle) {
    if (n < 2) continue;
    const versions = tap.counts.sessions.get(vehicle);
    note(stages.sessions, `${vehicle}:1`, versions?.get('1') ?? 0);
    note(stages.sessions, `${vehicle}:2`, versions?.get('2') ?? 0);
  }
  const last = receiver ? stages.delivered : stages.telemetry;
  return {
    tried: events.length,
    acknowledged: acked.length,
    stored: last.found,
    lost: Math.max(...Object.values(stages).map((s) => s.missing)),
    duplicatedKafka: stages.raw.repeated + stages.telemetry.repeated + stages.sessions.repeated,
    duplicatedDelivered: receiver ? stages.delivered.repeated : 0,
    stages,
  };
}

/** Whether every acknowledged event reached every stage. */
function complete(accounting) {
  return accounting.lost === 0;
}

module.exports = { webhookId, startTap, account, complete };
