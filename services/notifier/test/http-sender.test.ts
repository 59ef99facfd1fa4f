import diagnosticsChannel from 'node:diagnostics_channel';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHttpSender, type HttpSender, type SenderOptions } from '../src/delivery/http-sender';
import type { Resolver } from '../src/delivery/ssrf-guard';

interface Sink {
  url: string;
  port: number;
  connections: number;
  requests: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: string }>;
  close(): Promise<void>;
}

/** A server on 127.0.0.1 that counts connections and records every request before `handle` answers it. */
async function startSink(handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<Sink> {
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      sink.requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      handle(req, res);
    });
  });
  server.on('connection', () => {
    sink.connections += 1;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const sink: Sink = {
    url: `http://127.0.0.1:${port}`,
    port,
    connections: 0,
    requests: [],
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return sink;
}

const LOOPBACK: SenderOptions = { timeoutMs: 5_000, allowHttp: true, allowedNetworks: ['127.0.0.0/8'] };
const request = (url: string) => ({
  url,
  body: '{"type":"vehicle.telemetry"}',
  headers: { 'webhook-id': 'msg_1', 'webhook-timestamp': '1700000000', 'webhook-signature': 'v1,abc' },
});

/** Counts sockets undici managed to connect while `fn` runs. */
async function countingConnects<T>(fn: () => Promise<T>): Promise<{ value: T; connected: string[] }> {
  const connected: string[] = [];
  const onConnected = (message: unknown) => {
    const { connectParams } = message as { connectParams: { hostname: string } };
    connected.push(connectParams.hostname);
  };
  diagnosticsChannel.subscribe('undici:client:connected', onConnected);
  try {
    return { value: await fn(), connected };
  } finally {
    diagnosticsChannel.unsubscribe('undici:client:connected', onConnected);
  }
}

describe('http sender', () => {
  const sinks: Sink[] = [];
  const senders: HttpSender[] = [];
  const sink = async (handle: (req: IncomingMessage, res: ServerResponse) => void) => {
    const started = await startSink(handle);
    sinks.push(started);
    return started;
  };
  const sender = (options: SenderOptions) => {
    const created = createHttpSender(options);
    senders.push(created);
    return created;
  };

  afterEach(async () => {
    await Promise.all(senders.splice(0).map((s) => s.close()));
    await Promise.all(sinks.splice(0).map((s) => s.close()));
  });

  it('posts the body with the signature headers, JSON content type and user agent; 2xx excerpt truncated', async () => {
    const target = await sink((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-receiver': 'yes' });
      res.end('é'.repeat(50) + 'x'.repeat(4_000));
    });
    const { result, responseExcerpt, durationMs } = await sender({ ...LOOPBACK, maxResponseBytes: 100 }).send(
      request(`${target.url}/hooks/a?tenant=1`),
    );

    expect(result).toEqual({
      kind: 'response',
      status: 200,
      headers: expect.objectContaining({ 'x-receiver': 'yes', 'content-type': 'text/plain' }),
    });
    expect(responseExcerpt).toBe('é'.repeat(50));
    expect(durationMs).toBeGreaterThanOrEqual(0);
    expect(target.requests).toHaveLength(1);
    const [received] = target.requests;
    expect(received).toMatchObject({
      method: 'POST',
      url: '/hooks/a?tenant=1',
      body: '{"type":"vehicle.telemetry"}',
    });
    expect(received!.headers).toMatchObject({
      'content-type': 'application/json',
      'user-agent': 'ampflow-notifier/1',
      'webhook-id': 'msg_1',
      'webhook-timestamp': '1700000000',
      'webhook-signature': 'v1,abc',
    });
  });

  it('reports a 500 with its body, and keeps the whole of a short body', async () => {
    const target = await sink((_req, res) => {
      res.writeHead(500).end('boom');
    });
    const { result, responseExcerpt } = await sender(LOOPBACK).send(request(target.url));
    expect(result).toMatchObject({ kind: 'response', status: 500 });
    expect(responseExcerpt).toBe('boom');
  });

  it('does not follow a redirect: a 302 is just a status', async () => {
    const target = await sink((req, res) => {
      if (req.url === '/moved') res.writeHead(302, { location: '/elsewhere' }).end();
      else res.writeHead(200).end('followed');
    });
    const { result, responseExcerpt } = await sender(LOOPBACK).send(request(`${target.url}/moved`));
    expect(result).toMatchObject({ kind: 'response', status: 302, headers: { location: '/elsewhere' } });
    expect(responseExcerpt).toBe('');
    expect(target.requests.map((r) => r.url)).toEqual(['/moved']);
  });

  it('times out when the server never answers', async () => {
    const target = await sink(() => {
      // never answers
    });
    const { result, responseExcerpt } = await sender({ ...LOOPBACK, timeoutMs: 300 }).send(
      request(target.url),
    );
    expect(result).toEqual({ kind: 'timeout' });
    expect(responseExcerpt).toBeNull();
    expect(target.requests).toHaveLength(1);
  });

  it('times out when the headers come but the body never ends', async () => {
    const target = await sink((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial');
    });
    const { result } = await sender({ ...LOOPBACK, timeoutMs: 300 }).send(request(target.url));
    expect(result).toEqual({ kind: 'timeout' });
  });

  it('reports a closed port as network_error ECONNREFUSED', async () => {
    const closed = await startSink(() => undefined);
    await closed.close();
    const { result, responseExcerpt } = await sender(LOOPBACK).send(request(closed.url));
    expect(result).toEqual({ kind: 'network_error', code: 'ECONNREFUSED' });
    expect(responseExcerpt).toBeNull();
  });

  it('refuses loopback when it is not allow-listed, as an IP literal or a host name, without connecting', async () => {
    const target = await sink((_req, res) => res.writeHead(200).end());
    const refusing = sender({ ...LOOPBACK, allowedNetworks: [] });
    const { value, connected } = await countingConnects(() =>
      Promise.all([
        refusing.send(request(target.url)),
        refusing.send(request(`http://localhost:${target.port}/`)),
        refusing.send(request(`http://[::ffff:127.0.0.1]:${target.port}/`)),
        refusing.send(request(`http://2130706433:${target.port}/`)),
      ]),
    );
    for (const { result } of value)
      expect(result).toEqual({ kind: 'network_error', code: 'destination_refused' });
    expect(connected).toEqual([]);
    expect(target.connections).toBe(0);
  });

  it('delivers to loopback when 127.0.0.0/8 is allow-listed', async () => {
    const target = await sink((_req, res) => res.writeHead(204).end());
    const { result } = await sender(LOOPBACK).send(request(target.url));
    expect(result).toMatchObject({ kind: 'response', status: 204 });
    expect(target.connections).toBe(1);
  });

  it('refuses http:// unless allowHttp', async () => {
    const target = await sink((_req, res) => res.writeHead(200).end());
    const { result } = await sender({ ...LOOPBACK, allowHttp: false }).send(request(target.url));
    expect(result).toEqual({ kind: 'network_error', code: 'destination_refused' });
    expect(target.connections).toBe(0);
  });

  it('connects to the address the guarded resolver returned', async () => {
    const target = await sink((_req, res) => res.writeHead(200).end('via resolver'));
    const asked: string[] = [];
    const resolver: Resolver = async (hostname) => {
      asked.push(hostname);
      return [{ address: '127.0.0.1', family: 4 }];
    };
    const { result, responseExcerpt } = await sender({ ...LOOPBACK, resolver }).send(
      request(`http://hooks.customer.test:${target.port}/in`),
    );
    expect(result).toMatchObject({ kind: 'response', status: 200 });
    expect(responseExcerpt).toBe('via resolver');
    expect(asked).toEqual(['hooks.customer.test']);
    expect(target.requests[0]?.headers.host).toBe(`hooks.customer.test:${target.port}`);
  });

  it.each([
    ['a private address', [{ address: '10.0.0.1', family: 4 }]],
    ['the cloud metadata address', [{ address: '169.254.169.254', family: 4 }]],
    ['an IPv4-mapped private address', [{ address: '::ffff:10.0.0.1', family: 6 }]],
    [
      'an allowed and a private address',
      [
        { address: '127.0.0.1', family: 4 },
        { address: '10.0.0.1', family: 4 },
      ],
    ],
  ])('refuses a host name resolving to %s before any connection', async (_name, addresses) => {
    const target = await sink((_req, res) => res.writeHead(200).end());
    const asked: string[] = [];
    const resolver: Resolver = async (hostname) => {
      asked.push(hostname);
      return addresses;
    };
    const { value, connected } = await countingConnects(() =>
      sender({ ...LOOPBACK, resolver }).send(request(`http://rebind.customer.test:${target.port}/`)),
    );
    expect(value.result).toEqual({ kind: 'network_error', code: 'destination_refused' });
    expect(value.responseExcerpt).toBeNull();
    expect(asked).toEqual(['rebind.customer.test']);
    expect(connected).toEqual([]);
    expect(target.connections).toBe(0);
  });

  it('reports an unknown host name as network_error ENOTFOUND', async () => {
    const resolver: Resolver = async () => {
      throw Object.assign(new Error('getaddrinfo ENOTFOUND nowhere.test'), { code: 'ENOTFOUND' });
    };
    const { result } = await sender({ ...LOOPBACK, resolver }).send(request('http://nowhere.test/'));
    expect(result).toEqual({ kind: 'network_error', code: 'ENOTFOUND' });
  });

  it('reuses one keep-alive connection for sequential requests, also after a truncated body', async () => {
    const target = await sink((_req, res) => res.writeHead(200).end('y'.repeat(5_000)));
    const keepAlive = sender({ ...LOOPBACK, maxResponseBytes: 10 });
    for (let i = 0; i < 20; i++) {
      const { result, responseExcerpt } = await keepAlive.send(request(target.url));
      expect(result).toMatchObject({ kind: 'response', status: 200 });
      expect(responseExcerpt).toBe('y'.repeat(10));
    }
    expect(target.requests).toHaveLength(20);
    // Not exactly 1: undici's pool marks a client busy until its 'drain', which comes a macrotask after the
    // response ends, so a request sent in the very same tick goes to a second pooled connection; the two are
    // then reused in turn. Without keep-alive this would be 20.
    expect(target.connections).toBeLessThanOrEqual(2);
  });

  it('does not read a large body to the end', async () => {
    let serverDone!: (finished: boolean) => void;
    const writtenToTheEnd = new Promise<boolean>((resolve) => (serverDone = resolve));
    const target = await sink((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      // 64 MiB, chunked: more than socket buffers hold, so the server can only finish if the sender reads it all.
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      let written = 0;
      const pump = () => {
        while (written < 1024) {
          written += 1;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      res.on('error', () => undefined).on('close', () => serverDone(res.writableFinished));
      pump();
    });
    const { result, responseExcerpt } = await sender(LOOPBACK).send(request(target.url));
    expect(result).toMatchObject({ kind: 'response', status: 200 });
    expect(responseExcerpt).toBe('a'.repeat(1024));
    expect(await writtenToTheEnd).toBe(false);
  });

  it('reports an abort by the caller as network_error aborted', async () => {
    const target = await sink(() => {
      // never answers
    });
    const controller = new AbortController();
    const pending = sender(LOOPBACK).send(request(target.url), controller.signal);
    setTimeout(() => controller.abort(), 50);
    const { result } = await pending;
    expect(result).toEqual({ kind: 'network_error', code: 'aborted' });
  });
});
