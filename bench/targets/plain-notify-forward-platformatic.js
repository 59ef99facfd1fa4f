'use strict';
/* global setInterval */

/**
 * The notifier's second baseline: targets/plain-notify-forward.js on `@platformatic/kafka` instead of kafkajs.
 * Group BENCH_GROUP_ID consumes BENCH_SOURCE_TOPICS from its committed offsets and POSTs every record's value
 * unchanged to each of BENCH_SINK_URLS (undici, at most BENCH_ENDPOINT_CONCURRENCY (10) requests in flight per
 * endpoint; `webhook-id` = the record's `event-id` header). At most 1,000 records are in flight (the stream
 * pauses above). A record counts as done once all its POSTs answered; every 1 s the end of each partition's
 * finished prefix is committed (never past a record still in flight). No decoding, signing, retries or
 * durability.
 */
const { Consumer, MessagesStreamModes, MessagesStreamFallbackModes } = require('@platformatic/kafka');
const { endpointOf } = require('./endpoint-pool');

const brokers = (process.env.KAFKA_BROKERS || '').split(/[\s,]+/).filter(Boolean);
const groupId = process.env.BENCH_GROUP_ID;
const topics = (process.env.BENCH_SOURCE_TOPICS || '').split(',').filter(Boolean);
const sinkUrls = (process.env.BENCH_SINK_URLS || '').split(',').filter(Boolean);
const concurrency = Number(process.env.BENCH_ENDPOINT_CONCURRENCY || 10);
const NAME = 'plain-notify-forward-platformatic';
if (brokers.length === 0 || !groupId || topics.length === 0 || sinkUrls.length === 0) {
  process.stderr.write(`${NAME}: KAFKA_BROKERS, BENCH_GROUP_ID, BENCH_SOURCE_TOPICS, BENCH_SINK_URLS\n`);
  process.exit(1);
}
const MAX_IN_FLIGHT = 1_000;

const failures = { count: 0 };
const endpoints = sinkUrls.map((url) => endpointOf(url, concurrency, failures, NAME));
const consumer = new Consumer({
  clientId: NAME,
  bootstrapBrokers: brokers,
  groupId,
  sessionTimeout: 30_000,
  heartbeatInterval: 1_000,
  maxWaitTime: 500,
});

let stream;
let inFlight = 0;
/** topic:partition -> records in offset order, each { message, done }. */
const partitions = new Map();
/** topic:partition -> the last record of the finished prefix (its commit() commits offset + 1). */
const finished = new Map();

/** The `event-id` header (header keys arrive as Buffers: no deserialisers configured). */
function eventIdOf(message) {
  for (const [key, value] of message.headers) if (key.toString() === 'event-id') return value.toString();
  return undefined;
}

function settle(key) {
  const queue = partitions.get(key);
  while (queue.length > 0 && queue[0].done) finished.set(key, queue.shift().message);
}

function deliver(message) {
  const key = `${message.topic}:${message.partition}`;
  let queue = partitions.get(key);
  if (!queue) partitions.set(key, (queue = []));
  const entry = { message, done: false };
  queue.push(entry);
  inFlight += 1;
  if (inFlight >= MAX_IN_FLIGHT) stream.pause();
  const id = eventIdOf(message) ?? `${message.topic}:${message.partition}:${message.offset}`;
  Promise.all(endpoints.map((e) => e.post(message.value, id))).then(() => {
    entry.done = true;
    inFlight -= 1;
    settle(key);
    if (stream.isPaused() && inFlight < MAX_IN_FLIGHT / 2) stream.resume();
  });
}

async function commitFinished() {
  const last = [...finished.values()];
  finished.clear();
  await Promise.all(last.map((m) => m.commit()));
}

async function start() {
  stream = await consumer.consume({
    topics,
    autocommit: false,
    mode: MessagesStreamModes.COMMITTED,
    fallbackMode: MessagesStreamFallbackModes.EARLIEST,
    maxWaitTime: 500,
    // kafkajs's defaults, so that both baselines fetch the same amounts (platformatic's default maxBytes is 50 MB)
    maxBytes: 10 * 1024 * 1024,
    maxBytesPerPartition: 1024 * 1024,
  });
  stream.on('data', deliver);
  stream.on('error', (err) => {
    process.stderr.write(`${NAME}: stream error: ${err.stack ?? err}\n`);
    process.exit(1);
  });
  setInterval(() => {
    commitFinished().catch((err) => process.stderr.write(`${NAME}: commit: ${err}\n`));
  }, 1_000).unref();
}

async function stop() {
  await commitFinished().catch(() => {});
  await stream?.close().catch(() => {});
  await consumer.close().catch(() => {});
  await Promise.all(endpoints.map((e) => e.pool.close().catch(() => {})));
  if (failures.count > 0) process.stderr.write(`${NAME}: ${failures.count} failed POSTs\n`);
  process.exit(0);
}
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
start().catch((err) => {
  process.stderr.write(`${NAME}: ${err.stack ?? err}\n`);
  process.exit(1);
});
