import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import pino from 'pino';
import { parse } from 'yaml';
import { Topics } from '@ampflow/contracts';
import { eventually, uniqueName } from '@ampflow/testing';
import { createAdminRouter } from '../src/admin/admin-router';
import type { DeliveryControl } from '../src/admin/delivery-control';
import { SUBSCRIBABLE_EVENT_TYPES } from '../src/endpoints/model';
import { createEndpointStoreOn, createMemoryEndpointTable } from '../src/endpoints/store';
import { telemetry } from './fixtures';
import { ADMIN_TOKEN, managedNotifiers, type Json, type NotifierUnderTest } from './harness';

/**
 * Issue 18: docs/openapi/notifier-admin.yaml is the admin API's published contract. Every route of the router
 * is in the document and every operation of the document is a route; each is called on a real notifier (real
 * Kafka, registry and Redis), for its success and its main errors, and every answer's status must be
 * documented for that operation and its body must validate against the documented schema (ajv, JSON Schema
 * 2020-12, as OpenAPI 3.1 uses it).
 */
jest.setTimeout(120_000);

type Method = 'get' | 'post' | 'patch' | 'delete' | 'put';
const METHODS: readonly Method[] = ['get', 'post', 'patch', 'delete', 'put'];
const DOC_ID = 'notifier-admin';

const doc: Json = parse(readFileSync(join(__dirname, '../../../docs/openapi/notifier-admin.yaml'), 'utf8'));

/** The document with each `#/components/schemas/X` pointing into one JSON Schema of the components. */
function retarget(value: Json): Json {
  if (Array.isArray(value)) return value.map(retarget);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, v]) => [
      key,
      key === '$ref' && typeof v === 'string' && v.startsWith('#/components/schemas/')
        ? `${DOC_ID}#/$defs/${v.slice('#/components/schemas/'.length)}`
        : retarget(v),
    ]),
  );
}

const contract: Json = retarget(doc);
const ajv = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true });
ajv.addFormat('date-time', {
  type: 'string',
  validate: (text: string) =>
    /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(text) &&
    !Number.isNaN(Date.parse(text)),
});
ajv.addFormat('uri', {
  type: 'string',
  validate: (text: string) => URL.canParse(text),
});
ajv.addSchema({ $id: DOC_ID, $defs: contract.components.schemas });

/** A `$ref` to a shared response or parameter, resolved. */
const deref = (value: Json): Json => {
  if (typeof value?.$ref !== 'string' || !value.$ref.startsWith('#/components/')) return value;
  const [, , kind, name] = value.$ref.split('/');
  return contract.components[kind][name];
};

const validators = new Map<string, ValidateFunction>();
function validatorFor(key: string, schema: Json): ValidateFunction {
  let validate = validators.get(key);
  if (!validate) {
    validate = ajv.compile(schema);
    validators.set(key, validate);
  }
  return validate;
}

/** Operations of the document, as `METHOD /path/{param}`. */
function documentedOperations(): string[] {
  const out: string[] = [];
  for (const [path, item] of Object.entries<Json>(contract.paths))
    for (const method of METHODS) if (item[method]) out.push(`${method.toUpperCase()} ${path}`);
  return out.sort();
}

/** Routes of the admin router, as `METHOD /path/{param}`. */
function routerOperations(): string[] {
  const logger = pino({ level: 'silent' });
  const router = createAdminRouter({
    token: ADMIN_TOKEN,
    endpoints: createEndpointStoreOn(createMemoryEndpointTable(), { logger }),
    delivery: {} as DeliveryControl,
    logger,
  });
  const out: string[] = [];
  for (const layer of router.stack as Json[]) {
    if (!layer.route) continue;
    const path = String(layer.route.path).replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    for (const [method, on] of Object.entries(layer.route.methods as Record<string, boolean>))
      if (on && method !== '_all') out.push(`${method.toUpperCase()} ${path}`);
  }
  return out.sort();
}

interface Checked {
  operation: string;
  status: number;
}

const checked: Checked[] = [];
const { notifier, sink } = managedNotifiers();

/**
 * Calls the notifier and checks the answer against the operation `METHOD template` of the document: the status
 * is documented, its documented headers are present, and the body validates (or is empty when none is
 * documented). Resolves to the status and parsed body.
 */
async function call(
  n: NotifierUnderTest,
  operation: string,
  path: string,
  options: { body?: unknown; raw?: string; contentType?: string; token?: string | null } = {},
): Promise<{ status: number; body: Json }> {
  const [methodText, template] = operation.split(' ') as [string, string];
  const method = methodText.toLowerCase() as Method;
  const item = contract.paths[template];
  expect(item?.[method]).toBeDefined();
  const token = options.token === undefined ? ADMIN_TOKEN : options.token;
  const payload = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  const response = await fetch(`http://127.0.0.1:${n.app.port()}/v1${path}`, {
    method: methodText,
    headers: {
      ...(token !== null && { authorization: `Bearer ${token}` }),
      ...(payload !== undefined && { 'content-type': options.contentType ?? 'application/json' }),
    },
    body: payload,
  });
  const text = await response.text();
  const where = `${operation} (${path}) answered ${response.status} ${text.slice(0, 300)}`;
  const documented = item[method].responses[String(response.status)];
  if (!documented) throw new Error(`${where}: status not documented`);
  const answer = deref(documented);
  for (const header of Object.keys(answer.headers ?? {}))
    if (!response.headers.has(header)) throw new Error(`${where}: documented header ${header} missing`);
  const schema = answer.content?.['application/json']?.schema;
  let body: Json = null;
  if (schema === undefined) {
    if (text !== '') throw new Error(`${where}: a body where none is documented`);
  } else {
    body = JSON.parse(text);
    const validate = validatorFor(`${operation} ${response.status}`, schema);
    if (!validate(body)) throw new Error(`${where}: ${ajv.errorsText(validate.errors)}`);
  }
  checked.push({ operation, status: response.status });
  return { status: response.status, body };
}

describe('notifier admin API OpenAPI document', () => {
  it('documents exactly the routes of the admin router', () => {
    expect(documentedOperations()).toEqual(routerOperations());
  });

  it('lists exactly the subscribable event types', () => {
    expect([...doc.components.schemas.EventType.enum].sort()).toEqual([...SUBSCRIBABLE_EVENT_TYPES].sort());
  });

  it("matches every route's real answers, successes and errors", async () => {
    const n = await notifier({ retryScheduleMs: [0, 50] });
    let up = false;
    const s = await sink((_h, _q, res) => {
      res.writeHead(up ? 200 : 500).end(up ? 'ok' : 'down');
    });
    const missingEndpoint = 'ep_aaaaaaaaaaaaaaaaaaaaaaaaaa';

    // Every operation refuses a missing or wrong token the same way.
    for (const operation of documentedOperations()) {
      const path = operation.split(' ')[1]!.replace('{id}', 'x');
      expect((await call(n, operation, path, { token: null })).status).toBe(401);
    }
    expect((await call(n, 'GET /endpoints', '/endpoints', { token: 'wrong' })).status).toBe(401);

    // Endpoints.
    const created = await call(n, 'POST /endpoints', '/endpoints', {
      body: { url: s.url, eventTypes: ['vehicle.telemetry'], owner: 'cust_1', description: '<b>fleet</b>' },
    });
    expect(created.status).toBe(201);
    s.setSecret(created.body.secret);
    const id: string = created.body.id;
    expect((await call(n, 'POST /endpoints', '/endpoints', { body: { url: 'ftp://x' } })).status).toBe(400);
    expect((await call(n, 'POST /endpoints', '/endpoints', { raw: '{"url":' })).status).toBe(400);
    expect(
      (await call(n, 'POST /endpoints', '/endpoints', { raw: 'url', contentType: 'text/plain' })).status,
    ).toBe(415);
    const huge = JSON.stringify({ url: s.url, description: 'x'.repeat(70 * 1024) });
    expect((await call(n, 'POST /endpoints', '/endpoints', { raw: huge })).status).toBe(413);
    expect((await call(n, 'GET /endpoints', '/endpoints')).body.data).toHaveLength(1);
    expect((await call(n, 'GET /endpoints', '/endpoints?owner=cust_1')).status).toBe(200);
    expect((await call(n, 'GET /endpoints', '/endpoints?owner=a%20b')).status).toBe(400);
    expect((await call(n, 'GET /endpoints/{id}', `/endpoints/${id}`)).status).toBe(200);
    expect((await call(n, 'GET /endpoints/{id}', `/endpoints/${missingEndpoint}`)).status).toBe(404);
    expect(
      (await call(n, 'PATCH /endpoints/{id}', `/endpoints/${id}`, { body: { throttleRate: 50 } })).status,
    ).toBe(200);
    expect(
      (await call(n, 'PATCH /endpoints/{id}', `/endpoints/${id}`, { body: { throttleRate: 0 } })).status,
    ).toBe(400);
    expect(
      (await call(n, 'PATCH /endpoints/{id}', `/endpoints/${missingEndpoint}`, { body: {} })).status,
    ).toBe(404);
    expect((await call(n, 'GET /endpoints/{id}/secret', `/endpoints/${id}/secret`)).status).toBe(200);
    expect((await call(n, 'GET /endpoints/{id}/secret', `/endpoints/${missingEndpoint}/secret`)).status).toBe(
      404,
    );
    const rotated = await call(n, 'POST /endpoints/{id}/secret/rotate', `/endpoints/${id}/secret/rotate`);
    expect(rotated.status).toBe(200);
    s.setSecret(rotated.body.secret);
    expect(
      (await call(n, 'POST /endpoints/{id}/secret/rotate', `/endpoints/${missingEndpoint}/secret/rotate`))
        .status,
    ).toBe(404);

    // Messages that fail until dead, then a test message.
    const vehicle = `telematica:${uniqueName('v')}`;
    await n.produce(Topics.vehicleTelemetry, [telemetry(vehicle, 1), telemetry(vehicle, 2)]);
    await eventually(async () => {
      const dead = await call(n, 'GET /messages', `/messages?endpointId=${id}&status=dead`);
      return dead.body.data.length === 2;
    }, 'two dead deliveries');
    const test = await call(n, 'POST /endpoints/{id}/test', `/endpoints/${id}/test`);
    expect(test.status).toBe(202);
    expect(
      (await call(n, 'POST /endpoints/{id}/test', `/endpoints/${id}/test`, { body: { x: 1 } })).status,
    ).toBe(400);
    expect((await call(n, 'POST /endpoints/{id}/test', `/endpoints/${missingEndpoint}/test`)).status).toBe(
      404,
    );
    await eventually(async () => {
      const one = await call(n, 'GET /messages/{id}', `/messages/${test.body.messageId}`);
      return one.body.attempts.length > 0;
    }, 'the test message attempted');

    const listed = await call(n, 'GET /messages', '/messages?limit=2');
    expect(listed.body.data).toHaveLength(2);
    expect(listed.body.nextCursor).toEqual(expect.any(String));
    const next = await call(
      n,
      'GET /messages',
      `/messages?limit=2&cursor=${encodeURIComponent(listed.body.nextCursor)}`,
    );
    expect(next.body.data.length).toBeGreaterThan(0);
    expect(
      (
        await call(
          n,
          'GET /messages',
          `/messages?vehicle=${encodeURIComponent(vehicle)}&eventType=vehicle.telemetry`,
        )
      ).status,
    ).toBe(200);
    expect((await call(n, 'GET /messages', '/messages?status=nope')).status).toBe(400);
    const messageId: string = (
      await call(n, 'GET /messages', `/messages?vehicle=${encodeURIComponent(vehicle)}`)
    ).body.data[0].id;
    expect((await call(n, 'GET /messages/{id}', `/messages/${messageId}`)).body.body).not.toBeNull();
    expect((await call(n, 'GET /messages/{id}', '/messages/msg_unknown')).status).toBe(404);
    expect(
      (await call(n, 'GET /messages/{id}/attempts', `/messages/${messageId}/attempts`)).body.data.length,
    ).toBeGreaterThan(0);
    expect(
      (await call(n, 'GET /messages/{id}/attempts', '/messages/msg_unknown/attempts')).body.data,
    ).toEqual([]);
    expect(
      (await call(n, 'GET /endpoints/{id}/attempts', `/endpoints/${id}/attempts?limit=5`)).body.data.length,
    ).toBeGreaterThan(0);
    expect((await call(n, 'GET /endpoints/{id}/attempts', `/endpoints/${id}/attempts?limit=0`)).status).toBe(
      400,
    );
    expect(
      (await call(n, 'GET /endpoints/{id}/attempts', `/endpoints/${missingEndpoint}/attempts`)).status,
    ).toBe(404);
    expect(
      (await call(n, 'GET /dead-letters', `/dead-letters?endpointId=${id}`)).body.data.length,
    ).toBeGreaterThan(0);
    expect((await call(n, 'GET /dead-letters', '/dead-letters?limit=5000')).status).toBe(400);

    // Re-sends.
    up = true;
    const retried = await call(n, 'POST /messages/{id}/retry', `/messages/${messageId}/retry`, {
      body: { endpointId: id },
    });
    expect(retried.status).toBe(202);
    expect(
      (await call(n, 'POST /messages/{id}/retry', `/messages/${messageId}/retry`, { body: { x: 1 } })).status,
    ).toBe(400);
    expect(
      (
        await call(n, 'POST /messages/{id}/retry', `/messages/${messageId}/retry`, {
          body: { endpointId: missingEndpoint },
        })
      ).status,
    ).toBe(404);
    const bulk = await call(n, 'POST /messages/retry', '/messages/retry', {
      body: { endpointId: id, status: 'dead' },
    });
    expect(bulk.status).toBe(202);
    expect((await call(n, 'POST /messages/retry', '/messages/retry', { body: { limit: 0 } })).status).toBe(
      400,
    );
    expect(
      (await call(n, 'POST /messages/retry', '/messages/retry', { body: { endpointId: missingEndpoint } }))
        .status,
    ).toBe(404);
    const since = new Date(Date.now() - 600_000).toISOString();
    expect(
      (await call(n, 'POST /endpoints/{id}/recover', `/endpoints/${id}/recover`, { body: { since } })).status,
    ).toBe(202);
    expect(
      (await call(n, 'POST /endpoints/{id}/recover', `/endpoints/${id}/recover`, { body: { since: 'soon' } }))
        .status,
    ).toBe(400);
    expect(
      (
        await call(n, 'POST /endpoints/{id}/recover', `/endpoints/${missingEndpoint}/recover`, {
          body: { since },
        })
      ).status,
    ).toBe(404);

    // A disabled endpoint, then deletion.
    expect(
      (await call(n, 'PATCH /endpoints/{id}', `/endpoints/${id}`, { body: { enabled: false } })).status,
    ).toBe(200);
    expect(
      (await call(n, 'POST /endpoints/{id}/recover', `/endpoints/${id}/recover`, { body: { since } })).status,
    ).toBe(409);
    expect((await call(n, 'POST /endpoints/{id}/test', `/endpoints/${id}/test`)).status).toBe(409);
    expect((await call(n, 'GET /endpoints/{id}', `/endpoints/${id}`)).body.health.disabledReason).toBe(
      'manual',
    );
    expect((await call(n, 'DELETE /endpoints/{id}', `/endpoints/${id}`)).status).toBe(204);
    expect((await call(n, 'DELETE /endpoints/{id}', `/endpoints/${id}`)).status).toBe(404);

    // Every documented operation was called and answered with success at least once.
    const succeeded = new Set(checked.filter((c) => c.status < 300).map((c) => c.operation));
    expect([...succeeded].sort()).toEqual(documentedOperations());
  });
});
