'use strict';

/**
 * The webhook sinks (targets/webhook-sinks.js) as a forked child with an IPC channel: started on free
 * loopback ports, registered in `children` (stopped by `withChildren`), and queried with `request`.
 */
const http = require('node:http');
const path = require('node:path');
const { fork } = require('node:child_process');
const { ROOT, log } = require('./log');

const SINKS_SCRIPT = path.join(__dirname, '..', 'targets', 'webhook-sinks.js');

/**
 * Starts `count` sinks; returns `{ handle, ports, url(mode, i), request(type, fields) }`. `url` is the
 * endpoint URL a deliverer posts to (`http://127.0.0.1:<port>/<mode>/<i>`).
 */
async function startSinks({ count, children }) {
  const child = fork(SINKS_SCRIPT, [], {
    cwd: ROOT,
    env: { ...process.env, BENCH_SINK_COUNT: String(count) },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const handle = { name: 'webhook-sinks', child, pid: child.pid, output: '', outputLines: 0 };
  const keep = (chunk) => {
    const text = chunk.toString('utf8');
    handle.outputLines += (text.match(/\n/g) || []).length;
    handle.output = (handle.output + text).slice(-64 * 1024);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  handle.exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      handle.exitCode = code;
      handle.exitSignal = signal;
      resolve();
    });
  });
  children.push(handle);
  const pending = new Map();
  let nextId = 1;
  const ready = new Promise((resolve, reject) => {
    child.on('message', (msg) => {
      if (msg.type === 'ready') resolve(msg.ports);
      else if (pending.has(msg.id)) {
        const { resolve: done, reject: fail } = pending.get(msg.id);
        pending.delete(msg.id);
        if (msg.error) fail(new Error(`webhook-sinks: ${msg.error}`));
        else done(msg.result);
      }
    });
    handle.exited.then(() => {
      reject(new Error(`webhook-sinks exited (${handle.exitCode ?? handle.exitSignal}): ${handle.output}`));
      for (const { reject: fail } of pending.values()) fail(new Error('webhook-sinks exited'));
    });
  });
  const ports = await ready;
  log(`started ${count} webhook sinks (pid ${child.pid}) on ports ${ports[0]}..${ports.at(-1)}`);
  return {
    handle,
    ports,
    url: (mode, i) => `http://127.0.0.1:${ports[i]}/${mode}/${i}`,
    request: (type, fields = {}) =>
      new Promise((resolve, reject) => {
        const id = nextId++;
        pending.set(id, { resolve, reject });
        child.send({ id, type, ...fields });
      }),
  };
}

/**
 * A loopback HTTP receiver in this process that answers every request 204 and counts them (nothing verified):
 * `{ url, port, received, close() }`. `port` 0 (default) takes a free one.
 */
async function startCountingReceiver({ port = 0 } = {}) {
  let received = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received += 1;
      res.writeHead(204).end();
    });
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/hooks`,
    port: server.address().port,
    get received() {
      return received;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

module.exports = { startSinks, startCountingReceiver };
