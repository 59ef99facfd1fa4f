'use strict';
/* global setInterval, clearInterval */

/**
 * The notifier's baseline: a plain kafkajs consumer (group BENCH_GROUP_ID over BENCH_SOURCE_TOPICS,
 * `eachBatch`, 6 partitions at a time) that POSTs every record's value unchanged to each of BENCH_SINK_URLS
 * (comma-separated) with undici, at most BENCH_ENDPOINT_CONCURRENCY (10) requests in flight per endpoint, as
 * the notifier's default. `webhook-id` is the record's `event-id` header, so the sinks count it the same way.
 * A batch's offsets are resolved once all of its POSTs answered; autocommit every 1 s. No decoding, signing,
 * retries or durability: a failed POST is counted and logged, nothing more.
 */
const { Kafka, logLevel } = require('kafkajs');
const { endpointOf } = require('./endpoint-pool');

const brokers = (process.env.KAFKA_BROKERS || '').split(/[\s,]+/).filter(Boolean);
const groupId = process.env.BENCH_GROUP_ID;
const topics = (process.env.BENCH_SOURCE_TOPICS || '').split(',').filter(Boolean);
const sinkUrls = (process.env.BENCH_SINK_URLS || '').split(',').filter(Boolean);
const concurrency = Number(process.env.BENCH_ENDPOINT_CONCURRENCY || 10);
if (brokers.length === 0 || !groupId || topics.length === 0 || sinkUrls.length === 0) {
  process.stderr.write(
    'plain-notify-forward: KAFKA_BROKERS, BENCH_GROUP_ID, BENCH_SOURCE_TOPICS, BENCH_SINK_URLS\n',
  );
  process.exit(1);
}

const failures = { count: 0 };

const endpoints = sinkUrls.map((url) => endpointOf(url, concurrency, failures, 'plain-notify-forward'));
const kafka = new Kafka({ clientId: 'bench-plain-notify-forward', brokers, logLevel: logLevel.ERROR });
const consumer = kafka.consumer({
  groupId,
  sessionTimeout: 30_000,
  heartbeatInterval: 1_000,
  maxWaitTimeInMs: 500,
  allowAutoTopicCreation: false,
});
consumer.on(consumer.events.CRASH, (event) => {
  process.stderr.write(`plain-notify-forward: consumer crashed: ${event.payload.error}\n`);
  process.exit(1);
});

async function start() {
  await consumer.connect();
  await consumer.subscribe({ topics, fromBeginning: true });
  await consumer.run({
    autoCommit: true,
    autoCommitInterval: 1_000,
    partitionsConsumedConcurrently: 6,
    eachBatchAutoResolve: false,
    eachBatch: async ({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale }) => {
      if (batch.messages.length === 0 || !isRunning() || isStale()) return;
      const beat = setInterval(() => heartbeat().catch(() => {}), 1_000);
      try {
        await Promise.all(
          batch.messages.flatMap((m) =>
            endpoints.map((e) => e.post(m.value, m.headers?.['event-id']?.toString() ?? `${m.offset}`)),
          ),
        );
      } finally {
        clearInterval(beat);
      }
      resolveOffset(batch.lastOffset());
      await commitOffsetsIfNecessary();
      await heartbeat();
    },
  });
}

async function stop() {
  await consumer.disconnect().catch(() => {});
  await Promise.all(endpoints.map((e) => e.pool.close().catch(() => {})));
  if (failures.count > 0) process.stderr.write(`plain-notify-forward: ${failures.count} failed POSTs\n`);
  process.exit(0);
}
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
start().catch((err) => {
  process.stderr.write(`plain-notify-forward: ${err.stack ?? err}\n`);
  process.exit(1);
});
