'use strict';

/**
 * Preload (`NODE_OPTIONS=--require <this file>`) that counts, without changing service code, every Kafka
 * request a process sends (per API: Fetch, Produce, OffsetCommit, Heartbeat, Metadata, ...) and its Redis
 * commands and round trips. Used by `npm run bench -- e2e`; never a production entry point.
 *
 * - Kafka: wraps kafkajs's `Connection.prototype.send` (kafkajs/src/network/connection.js), which every
 *   request of every producer, consumer and admin goes through once (`request.apiName`), retries included.
 * - Redis (ioredis, when the process loads it): a command sent alone is one round trip (`Redis.prototype
 *   .sendCommand` called without a stream); a pipeline or MULTI is one round trip for all its commands
 *   (`Pipeline.prototype.exec`; its commands are counted as commands, not as round trips).
 *
 * On SIGUSR2 it writes its counts (cumulative since start) synchronously to `<BENCH_COUNTS_DIR>/<pid>.json`:
 * `{ pid, seq, at, kafka: { <apiName>: n }, redis: { commands, roundTrips, pipelines } }`; `seq` counts the
 * dumps, so a reader that signals can wait for a new one. It also writes once at exit.
 */
const fs = require('node:fs');
const path = require('node:path');

const dir = process.env.BENCH_COUNTS_DIR;
const kafka = Object.create(null);
const redis = { commands: 0, roundTrips: 0, pipelines: 0 };
let seq = 0;

function patchKafkajs() {
  const Connection = require('kafkajs/src/network/connection');
  const send = Connection.prototype.send;
  if (typeof send !== 'function')
    throw new Error('kafka-request-counter: kafkajs Connection.prototype.send is gone');
  Connection.prototype.send = function countedSend(protocol) {
    const name = protocol?.request?.apiName ?? `apiKey${protocol?.request?.apiKey}`;
    kafka[name] = (kafka[name] ?? 0) + 1;
    return send.apply(this, arguments);
  };
}

function patchIoredis() {
  let Redis;
  let Pipeline;
  try {
    Redis = require('ioredis/built/Redis').default;
    Pipeline = require('ioredis/built/Pipeline').default;
  } catch {
    return; // no ioredis where this process resolves it
  }
  const sendCommand = Redis.prototype.sendCommand;
  Redis.prototype.sendCommand = function countedSendCommand(command, stream) {
    redis.commands += 1;
    // A pipeline passes its own stream writer; those commands leave in the pipeline's one write.
    if (stream === undefined) redis.roundTrips += 1;
    return sendCommand.apply(this, arguments);
  };
  const exec = Pipeline.prototype.exec;
  Pipeline.prototype.exec = function countedExec() {
    redis.pipelines += 1;
    redis.roundTrips += 1;
    return exec.apply(this, arguments);
  };
}

function dump() {
  if (!dir) return;
  seq += 1;
  const file = path.join(dir, `${process.pid}.json`);
  const text = JSON.stringify({ pid: process.pid, seq, at: Date.now(), kafka, redis });
  try {
    fs.writeFileSync(`${file}.tmp`, text);
    fs.renameSync(`${file}.tmp`, file);
  } catch {
    // the bench reads what it can; a missing file shows as no counts
  }
}

patchKafkajs();
patchIoredis();
if (dir) {
  process.on('SIGUSR2', dump);
  process.on('exit', dump);
}

module.exports = { counts: () => ({ kafka: { ...kafka }, redis: { ...redis } }) };
