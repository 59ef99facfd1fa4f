'use strict';
/* global setInterval */

/**
 * Counts the Kafka requests a Node process sends, by API (Fetch, Produce, OffsetCommit, Heartbeat, ...), and
 * its CPU time, for measuring what a service costs idle and at low rates. Preload it:
 *
 *   KAFKA_REQUEST_COUNTS=/tmp/normalizer.jsonl node -r ./packages/kafka/tools/count-kafka-requests.js \
 *     services/normalizer/dist/main.js
 *
 * Every KAFKA_REQUEST_COUNTS_INTERVAL_MS (default 10 s) it appends one JSON line to the file: the window's
 * seconds, requests per API, and the process's CPU milliseconds (user + system) in the window. It wraps kafkajs's
 * `Connection.prototype.send` (one call per request sent) and changes nothing else.
 */
const fs = require('node:fs');
const path = require('node:path');

const file = process.env.KAFKA_REQUEST_COUNTS;
if (file) {
  // The kafkajs the process itself loads (the repository's one), whatever the working directory.
  const kafkajsDir = path.dirname(
    require.resolve('kafkajs/package.json', { paths: [process.cwd(), __dirname] }),
  );
  const Connection = require(path.join(kafkajsDir, 'src/network/connection'));
  const apiKeys = require(path.join(kafkajsDir, 'src/protocol/requests/apiKeys'));
  const names = Object.fromEntries(Object.entries(apiKeys).map(([name, key]) => [key, name]));
  const intervalMs = Number(process.env.KAFKA_REQUEST_COUNTS_INTERVAL_MS || 10_000);
  let counts = {};
  let since = Date.now();
  let cpu = process.cpuUsage();

  const send = Connection.prototype.send;
  Connection.prototype.send = function countedSend(protocol) {
    const name = names[protocol.request.apiKey] ?? String(protocol.request.apiKey);
    counts[name] = (counts[name] ?? 0) + 1;
    return send.call(this, protocol);
  };

  const flush = () => {
    const now = Date.now();
    const used = process.cpuUsage(cpu);
    const line = {
      at: new Date(now).toISOString(),
      seconds: (now - since) / 1000,
      requests: counts,
      cpuMs: Math.round((used.user + used.system) / 1000),
    };
    fs.appendFileSync(file, `${JSON.stringify(line)}\n`);
    counts = {};
    since = now;
    cpu = process.cpuUsage();
  };
  setInterval(flush, intervalMs).unref();
}
