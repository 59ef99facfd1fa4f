'use strict';

/**
 * The normalizer's baseline: a plain kafkajs consume-and-forward. Group BENCH_GROUP_ID consumes
 * BENCH_SOURCE_TOPICS (comma-separated) and produces every fetched batch unchanged (key, value, headers) to
 * BENCH_OUTPUT_TOPIC with acks -1, then resolves its offsets; commits as the services' consumer runner does
 * (autocommit every 1 s). No decoding, no encoding, no per-record work.
 */
const { Kafka, Partitioners, logLevel } = require('kafkajs');

const brokers = (process.env.KAFKA_BROKERS || '').split(/[\s,]+/).filter(Boolean);
const groupId = process.env.BENCH_GROUP_ID;
const topics = (process.env.BENCH_SOURCE_TOPICS || '').split(',').filter(Boolean);
const outputTopic = process.env.BENCH_OUTPUT_TOPIC;
if (brokers.length === 0 || !groupId || topics.length === 0 || !outputTopic) {
  process.stderr.write(
    'plain-forward: KAFKA_BROKERS, BENCH_GROUP_ID, BENCH_SOURCE_TOPICS, BENCH_OUTPUT_TOPIC\n',
  );
  process.exit(1);
}

const kafka = new Kafka({ clientId: 'bench-plain-forward', brokers, logLevel: logLevel.ERROR });
const producer = kafka.producer({
  createPartitioner: Partitioners.DefaultPartitioner,
  allowAutoTopicCreation: false,
});
const consumer = kafka.consumer({
  groupId,
  sessionTimeout: 10_000,
  heartbeatInterval: 1_000,
  maxWaitTimeInMs: 1_000,
  allowAutoTopicCreation: false,
});
consumer.on(consumer.events.CRASH, (event) => {
  process.stderr.write(`plain-forward: consumer crashed: ${event.payload.error}\n`);
  process.exit(1);
});

async function start() {
  await producer.connect();
  await consumer.connect();
  await consumer.subscribe({ topics, fromBeginning: true });
  await consumer.run({
    autoCommit: true,
    autoCommitInterval: 1_000,
    eachBatchAutoResolve: false,
    eachBatch: async ({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale }) => {
      if (batch.messages.length === 0 || !isRunning() || isStale()) return;
      await producer.send({
        topic: outputTopic,
        acks: -1,
        messages: batch.messages.map((m) => ({ key: m.key, value: m.value, headers: m.headers })),
      });
      resolveOffset(batch.lastOffset());
      await commitOffsetsIfNecessary();
      await heartbeat();
    },
  });
}

async function stop() {
  await consumer.disconnect().catch(() => {});
  await producer.disconnect().catch(() => {});
  process.exit(0);
}
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
start().catch((err) => {
  process.stderr.write(`plain-forward: ${err.stack ?? err}\n`);
  process.exit(1);
});
