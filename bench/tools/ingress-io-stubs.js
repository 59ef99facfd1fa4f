'use strict';

/**
 * Preloaded into the real ingress to attribute its cost (`BENCH_VARIANTS=1`):
 *
 *   node --require bench/tools/ingress-io-stubs.js services/ingress/dist/main.js
 *
 * main.js runs unchanged; before it loads, this replaces one or both of its I/O dependencies:
 *
 *   BENCH_STUB_REDIS=1  the ingress's createRedisSeenStore returns an in-memory store (same interface, same
 *                       dedup semantics)
 *   BENCH_STUB_KAFKA=1  every kafkajs producer's send/sendBatch resolves at once (nothing is written; the
 *                       client still connects, creates topics and answers readiness as usual)
 *
 * An analysis tool for the bench, never a production entry point. It patches the built modules' exports, so
 * it fails loudly if the function it replaces is no longer there.
 */
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');

function replaceExport(modulePath, name, replace) {
  const exports = require(modulePath);
  if (typeof exports[name] !== 'function') {
    throw new Error(`ingress-io-stubs: ${modulePath} no longer exports ${name}; update the stub`);
  }
  exports[name] = replace(exports[name]);
}

if (process.env.BENCH_STUB_REDIS === '1') {
  replaceExport(
    path.join(ROOT, 'services', 'ingress', 'dist', 'seen-store.js'),
    'createRedisSeenStore',
    () => () => {
      const seen = new Set();
      return {
        connect: async () => {},
        isSeen: async (provider, eventId) => seen.has(`${provider}:${eventId}`),
        markSeen: async (provider, eventId) => {
          seen.add(`${provider}:${eventId}`);
        },
        isConnected: () => true,
        close: async () => {},
      };
    },
  );
}

if (process.env.BENCH_STUB_KAFKA === '1') {
  const { Kafka } = require('kafkajs');
  const producer = Kafka.prototype.producer;
  Kafka.prototype.producer = function producerWithoutSend(options) {
    const real = producer.call(this, options);
    real.send = async () => [];
    real.sendBatch = async () => [];
    return real;
  };
}
