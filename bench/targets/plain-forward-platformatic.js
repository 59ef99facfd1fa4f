'use strict';
/* global setInterval, setImmediate */

/**
 * The normalizer's second baseline: the same plain consume-and-forward as targets/plain-forward.js, on
 * `@platformatic/kafka` instead of kafkajs (the ceiling another client would give). Group BENCH_GROUP_ID
 * consumes BENCH_SOURCE_TOPICS from its committed offsets and produces every record unchanged (key, value,
 * headers) to BENCH_OUTPUT_TOPIC with acks -1: the records that arrived while a send was in flight leave
 * together in the next send (one send in flight, at most ~900 kB, as kafkajs's eachBatch does per batch). A record's offset is
 * committed only after its send was acknowledged, every 1 s (the last acknowledged offset per partition), as
 * the kafkajs baseline's autocommit does. No decoding, no encoding, no per-record work.
 */
const {
  Consumer,
  MessagesStreamModes,
  MessagesStreamFallbackModes,
  Producer,
  ProduceAcks,
} = require('@platformatic/kafka');

const brokers = (process.env.KAFKA_BROKERS || '').split(/[\s,]+/).filter(Boolean);
const groupId = process.env.BENCH_GROUP_ID;
const topics = (process.env.BENCH_SOURCE_TOPICS || '').split(',').filter(Boolean);
const outputTopic = process.env.BENCH_OUTPUT_TOPIC;
if (brokers.length === 0 || !groupId || topics.length === 0 || !outputTopic) {
  process.stderr.write(
    'plain-forward-platformatic: KAFKA_BROKERS, BENCH_GROUP_ID, BENCH_SOURCE_TOPICS, BENCH_OUTPUT_TOPIC\n',
  );
  process.exit(1);
}

const MAX_PENDING = 20_000;
const MAX_SEND_BYTES = 900_000;

/** The distinct innermost messages of a (nested) AggregateError, on one line. */
function leafErrors(err) {
  const out = new Set();
  const walk = (e) => {
    if (e && Array.isArray(e.errors) && e.errors.length > 0) e.errors.forEach(walk);
    else out.add(`${e?.code ?? ''} ${e?.apiCode ?? ''} ${e?.message ?? e}`.trim());
  };
  walk(err);
  return [...out].join(' | ');
}

const producer = new Producer({ clientId: 'bench-plain-forward-platformatic', bootstrapBrokers: brokers });
const consumer = new Consumer({
  clientId: 'bench-plain-forward-platformatic',
  bootstrapBrokers: brokers,
  groupId,
  sessionTimeout: 10_000,
  heartbeatInterval: 1_000,
  maxWaitTime: 1_000,
});

let stream;
let pending = [];
let sending = false;
/** topic:partition -> the last acknowledged message (its commit() commits offset + 1). */
const acknowledged = new Map();

async function flush() {
  if (sending || pending.length === 0) return;
  sending = true;
  // At most ~900 kB per send: the broker refuses a partition's batch above its max.message.bytes (1 MiB), and
  // kafkajs's eachBatch is bounded the same way (a fetch's batch per partition).
  let bytes = 0;
  let n = 0;
  while (n < pending.length && (n === 0 || bytes < MAX_SEND_BYTES)) {
    bytes += (pending[n].value?.length ?? 0) + (pending[n].key?.length ?? 0) + 64;
    n += 1;
  }
  const batch = pending.slice(0, n);
  pending = pending.slice(n);
  try {
    await producer.send({
      acks: ProduceAcks.ALL,
      messages: batch.map((m) => ({ topic: outputTopic, key: m.key, value: m.value, headers: m.headers })),
    });
    for (const m of batch) acknowledged.set(`${m.topic}:${m.partition}`, m);
  } catch (err) {
    process.stderr.write(`plain-forward-platformatic: send failed: ${leafErrors(err)}\n`);
    process.exit(1);
  }
  sending = false;
  if (stream.isPaused() && pending.length < MAX_PENDING) stream.resume();
  setImmediate(flush);
}

async function commitAcknowledged() {
  const last = [...acknowledged.values()];
  acknowledged.clear();
  await Promise.all(last.map((m) => m.commit()));
}

async function start() {
  stream = await consumer.consume({
    topics,
    autocommit: false,
    mode: MessagesStreamModes.COMMITTED,
    fallbackMode: MessagesStreamFallbackModes.EARLIEST,
    maxWaitTime: 1_000,
    // kafkajs's defaults, so that both baselines fetch the same amounts (platformatic's default maxBytes is 50 MB)
    maxBytes: 10 * 1024 * 1024,
    maxBytesPerPartition: 1024 * 1024,
  });
  stream.on('data', (m) => {
    pending.push(m);
    if (pending.length >= MAX_PENDING) stream.pause();
    if (!sending) setImmediate(flush);
  });
  stream.on('error', (err) => {
    process.stderr.write(`plain-forward-platformatic: stream error: ${err.stack ?? err}\n`);
    process.exit(1);
  });
  setInterval(() => {
    commitAcknowledged().catch((err) => process.stderr.write(`plain-forward-platformatic: commit: ${err}\n`));
  }, 1_000).unref();
}

async function stop() {
  await commitAcknowledged().catch(() => {});
  await stream?.close().catch(() => {});
  await consumer.close().catch(() => {});
  await producer.close().catch(() => {});
  process.exit(0);
}
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
start().catch((err) => {
  process.stderr.write(`plain-forward-platformatic: ${err.stack ?? err}\n`);
  process.exit(1);
});
