'use strict';
/* global setInterval, clearInterval */

/**
 * Slowloris (hundreds of connections that send their headers a byte at a time) while readings keep arriving,
 * then a burst far above capacity: thousands of readings at once over hundreds of connections. The ingress
 * must keep answering the legitimate traffic, shed the excess with 503 (which providers retry), and store every
 * reading it acknowledged.
 */
const net = require('node:net');
const { setTimeout: sleep } = require('node:timers/promises');
const { underLoad } = require('../lib/context');

/** `count` sockets to `port` that each trickle a request's headers, one byte every `intervalMs`. */
function slowloris(port, count, durationMs, intervalMs = 1_000) {
  const stats = { opened: 0, closedByServer: 0, errors: 0 };
  const sockets = [];
  const head =
    'POST /webhooks/telematica HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Slow: ';
  for (let i = 0; i < count; i++) {
    const socket = net.connect({ port, host: '127.0.0.1' });
    let pos = 0;
    let timer;
    socket.on('connect', () => {
      stats.opened += 1;
      timer = setInterval(() => {
        if (socket.destroyed) return clearInterval(timer);
        socket.write(pos < head.length ? head[pos++] : 'a');
      }, intervalMs);
    });
    socket.on('close', () => {
      clearInterval(timer);
      if (!socket.ownClose) stats.closedByServer += 1;
    });
    socket.on('error', () => (stats.errors += 1));
    sockets.push(socket);
  }
  return sleep(durationMs).then(() => {
    for (const s of sockets) {
      s.ownClose = true;
      s.destroy();
    }
    return stats;
  });
}

async function slowlorisExperiment(ctx) {
  let stats;
  const result = await underLoad(ctx, {
    name: 'slowloris',
    vehicles: ctx.full ? 600 : 200,
    rate: 20,
    fault: async () => {
      stats = await slowloris(ctx.platform.ingress.port, ctx.full ? 1_000 : 300, ctx.full ? 60_000 : 15_000);
      return Date.now();
    },
  });
  result.details.slowloris = stats;
  return result;
}

async function burst(ctx) {
  // The burst itself is the load: every vehicle's first reading at once over 256 connections, retried on 503.
  return underLoad(ctx, {
    name: 'burst',
    vehicles: ctx.full ? 5_000 : 1_500,
    rate: 1_000_000,
    connections: 256,
    fault: async () => Date.now(),
  });
}

module.exports = { slowloris: slowlorisExperiment, burst };
