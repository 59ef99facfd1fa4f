import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { eventually, fixtureBytes, metricValue, svixHeaders, uniqueName } from '@ampflow/testing';
import { SECRET, startIngress, type IngressHarness } from './ingress-harness';

/**
 * Issue 15, item 7: 600 slowloris connections (headers sent a byte at a time) were all still open after 45 s.
 * The HTTP server now cuts off headers that do not arrive within HTTP_HEADERS_TIMEOUT_MS and refuses
 * connections beyond HTTP_MAX_CONNECTIONS, while normal webhooks go on being served.
 */
const MAX_CONNECTIONS = 12;

interface Slowloris {
  socket: Socket;
  /** Everything the server sent back. */
  received(): string;
  closed: Promise<void>;
  stop(): void;
}

/** A connection that sends a webhook's request line and headers one byte every 100 ms, never finishing them. */
function slowloris(port: number): Slowloris {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined); // the server cutting us off is the point
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const text = `POST /webhooks/telematica HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Pad: ${'a'.repeat(10_000)}`;
  let sent = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || sent >= text.length) return;
    socket.write(text[sent++]!);
  }, 100);
  void closed.then(() => clearInterval(timer));
  return {
    socket,
    received: () => received,
    closed,
    stop: () => {
      clearInterval(timer);
      socket.destroy();
    },
  };
}

/** Opens a plain connection and resolves with what became of it before anything is sent. */
function bareConnection(port: number): Promise<{ socket: Socket; closedUnanswered: Promise<boolean> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
    socket.on('error', () => undefined);
    const closedUnanswered = new Promise<boolean>((done) =>
      socket.once('close', () => done(received === '')),
    );
    socket.once('connect', () => resolve({ socket, closedUnanswered }));
    socket.once('error', reject);
  });
}

const openConnections = async (h: IngressHarness) =>
  metricValue(await h.metrics(), 'ingress_http_connections') ?? -1;

const cleanup: Array<() => void> = [];
const running: IngressHarness[] = [];
afterEach(async () => {
  cleanup.splice(0).forEach((stop) => stop());
  await Promise.all(running.splice(0).map((h) => h.app.stop()));
});

/** A normal webhook on a connection of its own, closed after the answer so that it holds no slot. */
function postOnce(h: IngressHarness): Promise<number> {
  const body = fixtureBytes('telematica/vehicle-soc.json');
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${h.url}/webhooks/telematica`, {
      method: 'POST',
      agent: false, // Connection: close
      headers: svixHeaders(body, SECRET, { id: uniqueName('msg') }),
    });
    req.once('response', (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode!));
    });
    req.once('error', reject);
    req.end(body);
  });
}

it('closes slowloris connections at the headers timeout, refuses connections over the limit, and keeps serving', async () => {
  const h = await startIngress({
    httpLimits: {
      // Long enough for the steps below to run before the first slowloris client is cut off, on a busy machine.
      headersTimeoutMs: 6_000,
      requestTimeoutMs: 12_000,
      maxConnections: MAX_CONNECTIONS,
      connectionsCheckingIntervalMs: 250,
    },
  });
  running.push(h);

  // All slots but one are held by slowloris clients; webhooks are still served in the last one.
  const clients = Array.from({ length: MAX_CONNECTIONS - 1 }, () => slowloris(h.port));
  cleanup.push(...clients.map((s) => s.stop));
  await eventually(async () => (await openConnections(h)) === MAX_CONNECTIONS - 1, 'slowloris connected');
  expect(await postOnce(h)).toBe(200);

  // Once the last slot is held too, a further connection is closed at once, unanswered, and counted.
  await eventually(
    async () => (await openConnections(h)) === MAX_CONNECTIONS - 1,
    'webhook connection closed',
  );
  clients.push(slowloris(h.port));
  cleanup.push(clients.at(-1)!.stop);
  await eventually(async () => (await openConnections(h)) === MAX_CONNECTIONS, 'every slot held');
  const extra = await bareConnection(h.port);
  cleanup.push(() => extra.socket.destroy());
  expect(await extra.closedUnanswered).toBe(true);
  expect(metricValue(await h.metrics(), 'ingress_http_connections_refused_total')).toBe(1);

  // Each slowloris client is still sending when the headers timeout cuts it off with a 408.
  await Promise.all(clients.map((s) => s.closed));
  for (const s of clients) expect(s.received()).toMatch(/^HTTP\/1\.1 408 Request Timeout/);
  await eventually(async () => (await openConnections(h)) === 0, 'every slowloris connection closed');

  expect(await postOnce(h)).toBe(200);
});
