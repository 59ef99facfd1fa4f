import { request as httpRequest } from 'node:http';
import type { Kafka } from 'kafkajs';
import {
  collectRecords,
  eventually,
  fixtureBytes,
  fixtureJson,
  fixtureNames,
  metricValue,
  partitionableSocketFactory,
  partitionedKafka,
  smartcarHeaders,
  svixHeaders,
  testKafka,
  uniqueName,
  type RecordCollector,
} from '@ampflow/testing';
import type { IngressApp, IngressSettings } from '../src/app';
import { smartcarHmac } from '../src/providers/smartcar-signature';
import { AMT, SECRET, startIngress as startHarnessIngress, type IngressHarness } from './ingress-harness';

const running: IngressApp[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((app) => app.stop()));
});

/** The harness's ingress with a 5 s drain, stopped after each test. */
async function startIngress(
  overrides: Partial<IngressSettings> = {},
  kafka?: Kafka,
): Promise<IngressHarness> {
  const h = await startHarnessIngress({ shutdownDrainMs: 5_000, ...overrides }, kafka);
  running.push(h.app);
  return h;
}

async function post(url: string, body: Buffer | string, headers: Record<string, string>) {
  const res = await fetch(url, { method: 'POST', body: new Uint8Array(Buffer.from(body)), headers });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : undefined, text };
}

/** A signed-to-be Smartcar VEHICLE_ERROR with event id `eventId`, padded to exactly `bytes` bytes. */
function paddedSmartcar(eventId: string, bytes: number): Buffer {
  const event = {
    ...fixtureJson<Record<string, unknown>>('smartcar/vehicle-error.json'),
    eventId,
    padding: '',
  };
  const bare = Buffer.byteLength(JSON.stringify(event));
  return Buffer.from(JSON.stringify({ ...event, padding: 'p'.repeat(bytes - bare) }));
}

/**
 * A signed Smartcar upload on its own connection that declares its full length but sends only its first
 * bytes, holding its reservation until `finish` sends the rest or `abort` drops the connection.
 */
function openUpload(url: string, body: Buffer) {
  const req = httpRequest(url, {
    method: 'POST',
    agent: false,
    headers: { ...smartcarHeaders(body, AMT), 'content-length': String(body.length) },
  });
  req.on('error', () => {}); // abort() makes the socket error on purpose
  const answered = new Promise<{ status: number; json: unknown }>((resolve, reject) => {
    req.once('response', (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(text) as unknown }));
      res.on('error', reject);
    });
  });
  req.write(body.subarray(0, 16));
  return {
    finish: () => {
      req.end(body.subarray(16));
      return answered;
    },
    abort: () => req.destroy(),
  };
}

/** POSTs a signed Smartcar body with chunked transfer encoding (no content-length); resolves with the status. */
function postChunked(url: string, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', agent: false, headers: smartcarHeaders(body, AMT) });
    req.once('response', (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode!));
    });
    req.once('error', reject);
    req.end(body);
  });
}

const postSmartcar = (h: IngressHarness, body: Buffer | string) =>
  post(`${h.url}/webhooks/smartcar`, body, smartcarHeaders(body, AMT));
const postTelematica = (h: IngressHarness, body: Buffer | string, id?: string) =>
  post(`${h.url}/webhooks/telematica`, body, svixHeaders(body, SECRET, { id }));

describe('ingress against the real Kafka and Redis', () => {
  const kafka = testKafka();
  const collectors: RecordCollector[] = [];
  afterEach(async () => {
    await Promise.all(collectors.splice(0).map((c) => c.stop()));
  });
  const collect = async (topics: string[]) => {
    const c = await collectRecords(kafka, topics);
    collectors.push(c);
    return c;
  };

  it('lands every signed seed payload on its raw topic with the exact bytes, key and headers', async () => {
    const h = await startIngress();
    const smartcar = fixtureNames('smartcar').filter((n) => !n.includes('verify'));
    const telematica = fixtureNames('telematica');
    const before = Date.now();
    for (const name of smartcar) expect((await postSmartcar(h, fixtureBytes(name))).status).toBe(200);
    const svixIds = new Map<string, string>();
    for (const name of telematica) {
      const id = uniqueName('msg');
      svixIds.set(id, name);
      const res = await postTelematica(h, fixtureBytes(name), id);
      expect(res).toMatchObject({ status: 200, json: { status: 'accepted', eventId: id } });
    }

    const sc = await collect([h.topics.smartcar]);
    const scRecords = await sc.waitFor(smartcar.length);
    for (const name of smartcar) {
      const body = fixtureJson<{ eventId: string; eventType: string }>(name);
      const record = scRecords.find((r) => r.headers['event-id'] === body.eventId);
      expect(record?.value?.equals(fixtureBytes(name))).toBe(true);
      expect(record?.key).toBe('829e30ab-5a13-40b5-9f8a-8538af86ed95');
      expect(record?.headers).toMatchObject({
        provider: 'smartcar',
        'event-type': body.eventType,
        'content-type': 'application/json',
      });
      const receivedAt = Date.parse(record?.headers['received-at'] ?? '');
      expect(record?.headers['received-at']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(receivedAt).toBeGreaterThanOrEqual(before - 1);
    }

    const tm = await collect([h.topics.telematica]);
    const tmRecords = await tm.waitFor(telematica.length);
    for (const record of tmRecords) {
      const name = svixIds.get(record.headers['event-id'] ?? '')!;
      const body = fixtureJson<{ type: string; vehicleId?: string; chargerId?: string; user?: string }>(name);
      expect(record.value?.equals(fixtureBytes(name))).toBe(true);
      expect(record.key).toBe(body.vehicleId ?? body.chargerId ?? body.user);
      expect(record.headers).toMatchObject({ provider: 'telematica', 'event-type': body.type });
    }
    expect(sc.records).toHaveLength(smartcar.length);
    expect(tm.records).toHaveLength(telematica.length);
  });

  it('answers VERIFY without publishing it', async () => {
    const h = await startIngress();
    const res = await postSmartcar(h, fixtureBytes('smartcar/verify.json'));
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ challenge: smartcarHmac(AMT, 'a1b2c3d4-challenge') });
    // A sentinel after the challenge: once it is on the topic, nothing else was published before it.
    await postSmartcar(h, fixtureBytes('smartcar/vehicle-error.json'));
    const c = await collect([h.topics.smartcar]);
    await c.waitFor(1);
    await new Promise((r) => setTimeout(r, 300));
    expect(c.records.map((r) => r.headers['event-type'])).toEqual(['VEHICLE_ERROR']);
  });

  it('stores a duplicate delivery once, answering 200 both times, also when both arrive at once', async () => {
    const h = await startIngress();
    const body = fixtureBytes('smartcar/vehicle-state-v4.json');
    expect((await postSmartcar(h, body)).json).toMatchObject({ status: 'accepted' });
    expect(await postSmartcar(h, body)).toMatchObject({ status: 200, json: { status: 'duplicate' } });

    const soc = fixtureBytes('telematica/vehicle-soc.json');
    const id = uniqueName('msg');
    const concurrent = await Promise.all([
      postTelematica(h, soc, id),
      postTelematica(h, soc, id),
      postTelematica(h, soc, id),
    ]);
    expect(concurrent.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(concurrent.map((r) => r.json?.status).sort()).toEqual(['accepted', 'duplicate', 'duplicate']);

    await postSmartcar(h, fixtureBytes('smartcar/vehicle-error.json')); // sentinel
    const c = await collect([h.topics.smartcar, h.topics.telematica]);
    await c.waitFor(3);
    await new Promise((r) => setTimeout(r, 300));
    expect(c.records.map((r) => r.headers['event-type']).sort()).toEqual([
      'VEHICLE_ERROR',
      'VEHICLE_STATE',
      'vehicle.soc',
    ]);
    expect(metricValue(await h.metrics(), 'ingress_duplicates_total', { provider: 'smartcar' })).toBe(1);
    expect(metricValue(await h.metrics(), 'ingress_duplicates_total', { provider: 'telematica' })).toBe(2);
  });

  it('publishes nothing for a wrong signature and answers with a JSON error that echoes no secret', async () => {
    const h = await startIngress();
    const body = fixtureBytes('smartcar/vehicle-state-guide.json');
    const bad = await post(`${h.url}/webhooks/smartcar`, body, smartcarHeaders(body, 'not-the-token'));
    expect(bad).toMatchObject({ status: 401, json: { error: { code: 'invalid_signature' } } });
    const stale = await post(
      `${h.url}/webhooks/telematica`,
      fixtureBytes('telematica/vehicle-soc.json'),
      svixHeaders(fixtureBytes('telematica/vehicle-soc.json'), SECRET, {
        timestamp: new Date(Date.now() - 600_000),
      }),
    );
    expect(stale).toMatchObject({ status: 401, json: { error: { code: 'stale_timestamp' } } });
    for (const text of [bad.text, stale.text]) {
      expect(text).not.toContain(AMT);
      expect(text).not.toContain(SECRET);
    }
    await postTelematica(h, fixtureBytes('telematica/vehicle-plug-status.json')); // sentinel
    const c = await collect([h.topics.smartcar, h.topics.telematica]);
    await c.waitFor(1);
    await new Promise((r) => setTimeout(r, 300));
    expect(c.records.map((r) => r.headers['event-type'])).toEqual(['vehicle.plug-status']);
    const metrics = await h.metrics();
    expect(
      metricValue(metrics, 'ingress_signature_failures_total', {
        provider: 'smartcar',
        reason: 'invalid_signature',
      }),
    ).toBe(1);
    expect(
      metricValue(metrics, 'ingress_requests_total', {
        provider: 'telematica',
        event_type: 'none',
        outcome: 'unauthorized',
      }),
    ).toBe(1);
  });

  it('answers 415 for non-JSON, 413 over the size limit and 400 for a malformed body', async () => {
    const h = await startIngress({ maxBodyBytes: 1024 });
    const text = await post(`${h.url}/webhooks/smartcar`, 'eventId=1', { 'content-type': 'text/plain' });
    expect(text).toMatchObject({ status: 415, json: { error: { code: 'unsupported_media_type' } } });
    const latin1 = await post(`${h.url}/webhooks/smartcar`, '{"eventId":"1"}', {
      'content-type': 'application/json; charset=latin1',
    });
    expect(latin1).toMatchObject({ status: 415, json: { error: { code: 'unsupported_encoding' } } });
    const notGzip = await post(`${h.url}/webhooks/smartcar`, '{"eventId":"1"}', {
      'content-type': 'application/json',
      'content-encoding': 'gzip',
    });
    expect(notGzip).toMatchObject({ status: 400, json: { error: { code: 'undecodable_body' } } });
    const big = JSON.stringify({ eventId: 'x', eventType: 'VEHICLE_STATE', pad: 'x'.repeat(2048) });
    expect(await postSmartcar(h, big)).toMatchObject({
      status: 413,
      json: { error: { code: 'payload_too_large' } },
    });
    expect(await postSmartcar(h, '{"eventId":')).toMatchObject({
      status: 400,
      json: { error: { code: 'malformed_json' } },
    });
    expect(await postSmartcar(h, '')).toMatchObject({
      status: 400,
      json: { error: { code: 'malformed_json' } },
    });
    const metrics = await h.metrics();
    expect(
      metricValue(metrics, 'ingress_requests_total', {
        provider: 'smartcar',
        event_type: 'none',
        outcome: 'too_large',
      }),
    ).toBe(1);
    expect(
      metricValue(metrics, 'ingress_schema_failures_total', {
        provider: 'smartcar',
        reason: 'malformed_json',
      }),
    ).toBe(2);
  });

  it('answers the same on plain node:http (the exact webhook URLs) as through express (the URL variants it matches)', async () => {
    const h = await startIngress({ maxBodyBytes: 1024 });
    /** Everything a client sees of an answer but the request id, which is checked separately. */
    const seen = async (path: string, body: string, headers: Record<string, string>) => {
      const res = await fetch(`${h.url}${path}`, {
        method: 'POST',
        body,
        headers: { 'x-request-id': `rid-${path}`, ...headers },
      });
      expect(res.headers.get('x-request-id')).toBe(`rid-${path}`);
      return {
        status: res.status,
        contentType: res.headers.get('content-type'),
        retryAfter: res.headers.get('retry-after'),
        text: await res.text(),
      };
    };
    const signed = (body: string) => smartcarHeaders(body, AMT);
    const cases: [string, Record<string, string>][] = [
      ['eventId=1', { 'content-type': 'text/plain' }],
      ['{"eventId":"1"}', { 'content-type': 'application/json', 'content-encoding': 'gzip' }],
      ['{"eventId":"1"}', { 'content-type': 'application/json', 'sc-signature': 'f'.repeat(64) }],
      ['{"eventId":"1"}', { 'content-type': 'application/json' }],
      ['{"eventId":', signed('{"eventId":')],
      [
        '{"eventId":"e","eventType":"VEHICLE_STATE","data":{}}',
        signed('{"eventId":"e","eventType":"VEHICLE_STATE","data":{}}'),
      ],
      [JSON.stringify({ pad: 'x'.repeat(2048) }), signed(JSON.stringify({ pad: 'x'.repeat(2048) }))],
    ];
    for (const [body, headers] of cases) {
      const plain = await seen('/webhooks/smartcar', body, headers);
      expect(plain.status).toBeGreaterThanOrEqual(400);
      for (const variant of ['/webhooks/smartcar/', '/webhooks/smartcar?from=test', '/Webhooks/Smartcar'])
        expect(await seen(variant, body, headers)).toEqual(plain);
    }
    // A request id is made when none is given, and a webhook is stored through either path.
    for (const path of ['/webhooks/telematica', '/webhooks/telematica/']) {
      const id = uniqueName('msg');
      const body = fixtureBytes('telematica/user-devices-disconnected.json');
      const res = await fetch(`${h.url}${path}`, {
        method: 'POST',
        body: new Uint8Array(body),
        headers: svixHeaders(body, SECRET, { id }),
      });
      expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
      expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(await res.json()).toEqual({ status: 'accepted', eventId: id });
    }
  });

  it('answers 503 in bounded time while Kafka is unreachable, and stores the retried delivery exactly once', async () => {
    const partition = partitionableSocketFactory();
    const kafkaBehindPartition = partitionedKafka(partition);
    const h = await startIngress({ kafkaPublishTimeoutMs: 1_500 }, kafkaBehindPartition);
    await eventually(async () => (await fetch(`${h.url}/readyz`)).status === 200, 'ready');

    partition.cut();
    await eventually(
      async () => (await fetch(`${h.url}/readyz`)).status === 503,
      'not ready while partitioned',
    );
    const body = fixtureBytes('telematica/vehicle-charging-status.json');
    const id = uniqueName('msg');
    const started = Date.now();
    const during = await postTelematica(h, body, id);
    // Refused at once (connection refused) or after the publish timeout: either way a 503 to retry.
    expect(during.status).toBe(503);
    expect(['kafka_timeout', 'kafka_unavailable']).toContain((during.json?.error as { code: string }).code);
    expect(Date.now() - started).toBeLessThan(5_000);

    partition.heal();
    await eventually(async () => (await fetch(`${h.url}/readyz`)).status === 200, 'ready again', 30_000);
    // The provider retries the same delivery (same Svix message id); whichever copy lands, it lands once.
    let retry = await postTelematica(h, body, id);
    for (let i = 0; retry.status !== 200 && i < 10; i++) retry = await postTelematica(h, body, id);
    expect(retry.status).toBe(200);
    expect(await postTelematica(h, body, id)).toMatchObject({ status: 200, json: { status: 'duplicate' } });

    await postTelematica(h, fixtureBytes('telematica/vehicle-soc.json')); // sentinel
    const c = await collect([h.topics.telematica]);
    await c.waitFor(2);
    await new Promise((r) => setTimeout(r, 500));
    expect(c.records.filter((r) => r.headers['event-id'] === id)).toHaveLength(1);
    expect(c.records).toHaveLength(2);
  });

  it('drains in-flight requests on stop: every received request is answered 200 and stored', async () => {
    const h = await startIngress();
    const body = fixtureBytes('telematica/user-devices-disconnected.json');
    let answered = 0;
    const requests = Array.from({ length: 40 }, () =>
      postTelematica(h, body).then((r) => {
        answered += 1;
        return r;
      }),
    );
    // Stop as soon as the server has read every body: most requests are then waiting for Kafka.
    await eventually(
      async () =>
        metricValue(await h.metrics(), 'ingress_body_size_bytes_count', { provider: 'telematica' }) === 40,
      'all 40 bodies received',
      20_000,
      1,
    );
    const answeredBeforeStop = answered;
    await h.app.stop();
    running.splice(running.indexOf(h.app), 1);
    const results = await Promise.all(requests);
    expect(results.map((r) => r.status)).toEqual(Array(40).fill(200));
    const c = await collect([h.topics.telematica]);
    await c.waitFor(40);
    await new Promise((r) => setTimeout(r, 300));
    expect(c.records).toHaveLength(40);
    // Not an assertion (timing), but it tells whether the stop really overlapped the requests.
    process.stderr.write(
      `drain test: ${40 - answeredBeforeStop} of 40 requests were still in flight at stop\n`,
    );
  });

  it('serves health, readiness and Prometheus metrics', async () => {
    const h = await startIngress();
    expect(await (await fetch(`${h.url}/healthz`)).json()).toEqual({ status: 'ok' });
    await eventually(async () => (await fetch(`${h.url}/readyz`)).status === 200, 'ready');
    await postSmartcar(h, fixtureBytes('smartcar/vehicle-error.json'));
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(
      metricValue(metrics, 'ingress_requests_total', {
        provider: 'smartcar',
        event_type: 'VEHICLE_ERROR',
        outcome: 'accepted',
      }),
    ).toBe(1);
    expect(
      metricValue(metrics, 'ingress_publish_duration_seconds_count', { provider: 'smartcar', result: 'ok' }),
    ).toBe(1);
    expect(metricValue(metrics, 'ingress_body_size_bytes_count', { provider: 'smartcar' })).toBe(1);
    expect(metricValue(metrics, 'ingress_kafka_connected')).toBe(1);
  });

  it('answers 503 ingress_busy, unread, beyond INGRESS_MAX_INFLIGHT_BYTES and takes webhooks again once bytes are released', async () => {
    const h = await startIngress({ maxBodyBytes: 64 * 1024, maxInflightBytes: 100_000 });
    const inflight = async () => metricValue(await h.metrics(), 'ingress_inflight_bytes');
    const [first, second, third] = ['busy-1', 'busy-2', 'busy-3'].map((id) => paddedSmartcar(id, 40_000));

    // Two uploads that declared 40,000 bytes each and sent only a few: 80,000 bytes reserved.
    const stalled = [
      openUpload(`${h.url}/webhooks/smartcar`, first!),
      openUpload(`${h.url}/webhooks/smartcar`, second!),
    ];
    await eventually(async () => (await inflight()) === 80_000, 'two uploads reserved');

    const refused = await fetch(`${h.url}/webhooks/smartcar`, {
      method: 'POST',
      body: new Uint8Array(third!),
      headers: smartcarHeaders(third!, AMT),
    });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('5');
    expect(await refused.json()).toMatchObject({ error: { code: 'ingress_busy' } });
    // A body without a declared length reserves the whole body limit (64 KiB), which does not fit either.
    expect(await postChunked(`${h.url}/webhooks/smartcar`, third!)).toBe(503);
    expect(await inflight()).toBe(80_000);

    // A client that goes away gives its bytes back; a finished upload is stored and gives its bytes back.
    stalled[0]!.abort();
    await eventually(async () => (await inflight()) === 40_000, 'aborted upload released');
    expect(await stalled[1]!.finish()).toMatchObject({ status: 200, json: { status: 'accepted' } });
    expect(await inflight()).toBe(0);
    expect(await postSmartcar(h, third!)).toMatchObject({ status: 200, json: { status: 'accepted' } });
    expect(await postChunked(`${h.url}/webhooks/smartcar`, paddedSmartcar('busy-4', 1_000))).toBe(200);

    const metrics = await h.metrics();
    expect(metricValue(metrics, 'ingress_busy_refusals_total')).toBe(2);
    expect(
      metricValue(metrics, 'ingress_requests_total', {
        provider: 'smartcar',
        event_type: 'none',
        outcome: 'busy',
      }),
    ).toBe(2);
    const c = await collect([h.topics.smartcar]);
    await c.waitFor(3);
    await new Promise((r) => setTimeout(r, 300));
    expect(c.records.map((r) => r.headers['event-id']).sort()).toEqual(['busy-2', 'busy-3', 'busy-4']);
  });

  it("answers 413 for a body the raw topic's max.message.bytes could not store, and publishes nothing", async () => {
    // MAX_BODY_BYTES allows 2 MiB, but the raw topics take records of at most the catalogue's 1,048,588 bytes.
    const h = await startIngress({ maxBodyBytes: 2 * 1024 * 1024 });
    const fits = paddedSmartcar('fits-topic', 1_030_000);
    const over = paddedSmartcar('over-topic', 1_100_000);
    const overTelematica = Buffer.from(
      JSON.stringify({
        ...fixtureJson<object>('telematica/vehicle-soc.json'),
        padding: 'p'.repeat(1_100_000),
      }),
    );
    expect(await postSmartcar(h, over)).toMatchObject({
      status: 413,
      json: { error: { code: 'payload_too_large' } },
    });
    expect(await postTelematica(h, overTelematica)).toMatchObject({ status: 413 });
    // Under the lowered body limit (1,048,588 - 512 - 4 KiB = 1,043,980 bytes), but an event id of 6 KB, copied
    // into a record header, makes the record too large: the producer refuses it, also a 413 with nothing stored.
    const tooLargeRecord = paddedSmartcar('x'.repeat(6_000), 1_043_000);
    expect(await postSmartcar(h, tooLargeRecord)).toMatchObject({
      status: 413,
      json: { error: { code: 'record_too_large' } },
    });
    expect(await postSmartcar(h, fits)).toMatchObject({ status: 200, json: { status: 'accepted' } });

    const c = await collect([h.topics.smartcar, h.topics.telematica]);
    await c.waitFor(1);
    await new Promise((r) => setTimeout(r, 500));
    expect(c.records.map((r) => r.headers['event-id'])).toEqual(['fits-topic']);
    expect(c.records[0]!.value!.equals(fits)).toBe(true);
    const metrics = await h.metrics();
    expect(
      metricValue(metrics, 'ingress_requests_total', {
        provider: 'smartcar',
        event_type: 'none',
        outcome: 'too_large',
      }),
    ).toBe(1);
    expect(
      metricValue(metrics, 'ingress_requests_total', {
        provider: 'smartcar',
        event_type: 'VEHICLE_ERROR',
        outcome: 'too_large',
      }),
    ).toBe(1);
  });

  it('creates its raw topics at start', async () => {
    const h = await startIngress();
    const admin = kafka.admin();
    await admin.connect();
    const topics = await admin.listTopics();
    await admin.disconnect();
    expect(topics).toEqual(expect.arrayContaining([h.topics.smartcar, h.topics.telematica]));
  });
});
