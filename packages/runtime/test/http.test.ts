import pino from 'pino';
import { Gauge } from 'prom-client';
import { createMetricsRegistry, type Registry } from '@ampflow/observability';
import {
  DependencyError,
  ValidationError,
  createOpsListener,
  createOpsService,
  startHttpServer,
  type RunningHttpServer,
} from '@ampflow/runtime';
import { createHttpApp, rawBodyLimits, requestLog, type HttpErrorAnswer } from '@ampflow/runtime/http';

/** The HTTP pieces over loopback: ops endpoints on plain node:http, the express app factory, the drain. */
const logger = pino({ level: 'silent' });
const servers: RunningHttpServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close(1_000)));
});

async function serve(listener: Parameters<typeof startHttpServer>[0]) {
  const server = await startHttpServer(listener, { port: 0, host: '127.0.0.1' });
  servers.push(server);
  return `http://127.0.0.1:${server.port}`;
}

function aRegistry(): Registry {
  const registry = createMetricsRegistry('runtime_test', { defaultMetrics: false });
  new Gauge({ name: 'runtime_test_answer', help: 'a constant', registers: [registry] }).set(42);
  return registry;
}

/** A deferred the test settles by hand. */
function aGate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

describe('ops endpoints on node:http', () => {
  it('answers /healthz, /readyz with its checks, /metrics, and JSON 404 otherwise', async () => {
    let kafka = true;
    const registry = aRegistry();
    const base = await serve(createOpsListener(registry, () => ({ kafka, redis: true })));

    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(health.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await health.json()).toEqual({ status: 'ok' });

    const ready = await fetch(`${base}/readyz?verbose=1`);
    expect([ready.status, await ready.json()]).toEqual([
      200,
      { status: 'ready', checks: { kafka: true, redis: true } },
    ]);
    kafka = false;
    const notReady = await fetch(`${base}/readyz`);
    expect([notReady.status, await notReady.json()]).toEqual([
      503,
      { status: 'not_ready', checks: { kafka: false, redis: true } },
    ]);

    const metrics = await fetch(`${base}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toBe(registry.contentType);
    expect(await metrics.text()).toContain('runtime_test_answer{service="runtime_test"} 42');

    for (const [method, path] of [
      ['GET', '/nope'],
      ['POST', '/healthz'],
    ] as const) {
      const missing = await fetch(`${base}${path}`, { method });
      expect([missing.status, await missing.json()]).toEqual([
        404,
        { error: { code: 'not_found', message: 'no such route' } },
      ]);
    }

    const head = await fetch(`${base}/healthz`, { method: 'HEAD' });
    expect([head.status, await head.text()]).toEqual([200, '']);
  });

  it('lets a scrape in progress finish when the server drains', async () => {
    const gate = aGate();
    const registry = createMetricsRegistry('runtime_test', { defaultMetrics: false });
    new Gauge({
      name: 'runtime_test_slow',
      help: 'collected only once the test opens the gate',
      registers: [registry],
      async collect() {
        await gate.opened;
        this.set(1);
      },
    });
    const server = await startHttpServer(
      createOpsListener(registry, () => ({})),
      { port: 0, host: '127.0.0.1' },
    );
    const scrape = fetch(`http://127.0.0.1:${server.port}/metrics`);
    await new Promise((resolve) => setTimeout(resolve, 100));

    const closed = server.close(5_000);
    gate.open();
    const answer = await scrape;
    expect(answer.status).toBe(200);
    expect(await answer.text()).toContain('runtime_test_slow{service="runtime_test"} 1');
    await closed;
  });

  it('createOpsService listens before starting the work and stops the work after the endpoints', async () => {
    const events: string[] = [];
    const service = createOpsService({
      name: 'test',
      httpPort: 0,
      shutdownDrainMs: 1_000,
      registry: aRegistry(),
      logger,
      readiness: () => ({ work: events.includes('started') }),
      start: async () => {
        const ready = await fetch(`http://127.0.0.1:${service.port()}/readyz`);
        events.push(`readyz ${ready.status} while starting`);
        events.push('started');
      },
      stop: async () => {
        await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
        events.push('stopped');
      },
    });
    await service.start();
    const port = service.port();
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    await service.stop();
    expect(events).toEqual(['readyz 503 while starting', 'started', 'stopped']);
  });
});

describe('createHttpApp', () => {
  function anApp(onError?: (answer: HttpErrorAnswer) => void) {
    const limits = rawBodyLimits({ small: 10 });
    const gate = aGate();
    const app = createHttpApp({
      logger,
      registry: aRegistry(),
      readiness: () => ({ ok: true }),
      onError,
      routes(routes) {
        routes.post('/echo', limits.reader('small'), (req, res) => {
          res.json({ bytes: (req.body as Buffer).length, logger: typeof requestLog(res).info });
        });
        routes.get('/invalid', () => {
          throw new ValidationError('bad_thing', 'that is not right');
        });
        routes.get('/down', async () => {
          throw new DependencyError('kafka_timeout', 'Kafka did not acknowledge');
        });
        routes.get('/bug', () => {
          throw new TypeError('secret detail');
        });
        routes.get('/slow', async (_req, res) => {
          await gate.opened;
          res.json({ slow: true });
        });
      },
    });
    return { app, limits, gate };
  }

  it('echoes the caller x-request-id (cut to 128 characters) or makes one up', async () => {
    const base = await serve(anApp().app);
    const given = await fetch(`${base}/healthz`, { headers: { 'x-request-id': 'r'.repeat(200) } });
    expect(given.headers.get('x-request-id')).toBe('r'.repeat(128));
    const made = await fetch(`${base}/healthz`);
    expect(made.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(made.headers.get('x-powered-by')).toBeNull();
  });

  it('serves the ops routes and a JSON 404', async () => {
    const base = await serve(anApp().app);
    expect(await (await fetch(`${base}/readyz`)).json()).toEqual({ status: 'ready', checks: { ok: true } });
    expect(await (await fetch(`${base}/metrics`)).text()).toContain(
      'runtime_test_answer{service="runtime_test"} 42',
    );
    const missing = await fetch(`${base}/nope`);
    expect([missing.status, await missing.json()]).toEqual([
      404,
      { error: { code: 'not_found', message: 'no such route' } },
    ]);
  });

  it('reads raw bodies under a per-route limit that can change, answering 413 over it', async () => {
    const { app, limits } = anApp();
    const base = await serve(app);
    const post = (body: string) =>
      fetch(`${base}/echo`, { method: 'POST', body, headers: { 'content-type': 'text/plain' } });

    expect(await (await post('0123456789')).json()).toEqual({ bytes: 10, logger: 'function' });
    const tooLarge = await post('0123456789a');
    expect([tooLarge.status, await tooLarge.json()]).toEqual([
      413,
      { error: { code: 'payload_too_large', message: 'the body exceeds 10 bytes' } },
    ]);
    limits.setLimitBytes('small', 20);
    expect(limits.limitBytes('small')).toBe(20);
    expect(await (await post('0123456789a')).json()).toEqual({ bytes: 11, logger: 'function' });
  });

  it('answers 400 undecodable_body to a body that is not in the Content-Encoding it names', async () => {
    const base = await serve(anApp().app);
    for (const encoding of ['gzip', 'deflate', 'br']) {
      const answer = await fetch(`${base}/echo`, {
        method: 'POST',
        body: '{"a":1}',
        headers: { 'content-type': 'application/json', 'content-encoding': encoding },
      });
      expect([encoding, answer.status, await answer.json()]).toEqual([
        encoding,
        400,
        {
          error: {
            code: 'undecodable_body',
            message: 'the body is not encoded as its Content-Encoding says',
          },
        },
      ]);
    }
  });

  it('maps errors through toHttpError and shows each answer to the error hook before it is sent', async () => {
    const seen: Array<[number, string, string | undefined]> = [];
    const base = await serve(
      anApp(({ status, body, res, req }) => {
        seen.push([status, body.error.code, req.path]);
        if (status === 503) res.setHeader('retry-after', '5');
      }).app,
    );

    const invalid = await fetch(`${base}/invalid`);
    expect([invalid.status, await invalid.json()]).toEqual([
      400,
      { error: { code: 'bad_thing', message: 'that is not right' } },
    ]);
    const down = await fetch(`${base}/down`);
    expect([down.status, down.headers.get('retry-after')]).toEqual([503, '5']);
    const bug = await fetch(`${base}/bug`);
    expect([bug.status, await bug.json()]).toEqual([
      500,
      { error: { code: 'internal_error', message: 'internal error' } },
    ]);
    expect(seen).toEqual([
      [400, 'bad_thing', '/invalid'],
      [503, 'kafka_timeout', '/down'],
      [500, 'internal_error', '/bug'],
    ]);
  });

  it('lets a request in progress finish when the server drains', async () => {
    const { app, gate } = anApp();
    const server = await startHttpServer(app, { port: 0, host: '127.0.0.1' });
    const slow = fetch(`http://127.0.0.1:${server.port}/slow`);
    await new Promise((resolve) => setTimeout(resolve, 100));

    const closed = server.close(5_000);
    gate.open();
    const answer = await slow;
    expect([answer.status, await answer.json()]).toEqual([200, { slow: true }]);
    await closed;
  });
});
