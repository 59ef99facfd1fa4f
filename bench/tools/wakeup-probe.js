'use strict';
/* global __filename, Buffer, setImmediate */

/**
 * What a wake-up costs on this machine: CPU per loopback round trip between two Node processes, back to back
 * and with a gap between round trips (the process sleeps in between, as a service does at low rates).
 *
 *   node bench/tools/wakeup-probe.js [gapMs=20] [hotRounds=5000] [gapRounds=300]
 *
 * Prints µs of CPU per round trip for each side (client: process.cpuUsage; server: its own, sent back).
 */
const net = require('node:net');
const { fork } = require('node:child_process');

if (process.argv[2] === '--server') {
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('data', (data) => socket.write(data));
  });
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
  process.on('message', (m) => m === 'cpu' && process.send({ cpu: process.cpuUsage() }));
} else {
  const [gapMs = 20, hotRounds = 5000, gapRounds = 300] = process.argv.slice(2).map(Number);
  const child = fork(__filename, ['--server']);
  const serverCpu = () =>
    new Promise((resolve) => {
      child.once('message', (m) => resolve(m.cpu.user + m.cpu.system));
      child.send('cpu');
    });
  child.once('message', ({ port }) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    const payload = Buffer.alloc(200, 1);
    const run = async (rounds, gap) => {
      const server0 = await serverCpu();
      const client0 = process.cpuUsage();
      await new Promise((resolve) => {
        let i = 0;
        const next = () => (i++ < rounds ? socket.write(payload) : resolve());
        socket.removeAllListeners('data');
        socket.on('data', () => (gap ? setTimeout(next, gap) : setImmediate(next)));
        next();
      });
      const client = process.cpuUsage(client0);
      const server = (await serverCpu()) - server0;
      return {
        clientUs: Math.round(((client.user + client.system) / rounds) * 10) / 10,
        serverUs: Math.round((server / rounds) * 10) / 10,
      };
    };
    (async () => {
      const rows = [];
      rows.push({ mode: 'back to back', ...(await run(hotRounds, 0)) });
      rows.push({ mode: `${gapMs} ms gap`, ...(await run(gapRounds, gapMs)) });
      console.table(rows);
      child.kill();
      socket.destroy();
    })();
  });
}
