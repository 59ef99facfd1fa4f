import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import pino from 'pino';
import { Router as expressRouter, type Router } from 'express';
import { parse } from 'yaml';
import { createMetricsRegistry } from '@ampflow/observability';
import { repoRoot } from '@ampflow/testing';
import { createConsoleApp, type ConsoleApp } from '../src/app';
import { createSessionAuth } from '../src/auth/session-routes';
import { createTokenSigner } from '../src/auth/tokens';
import { createNotifierProxy } from '../src/notifier-proxy';
import type { OpsData } from '../src/ops-data';

/**
 * docs/openapi/console.yaml against the code: its paths are exactly the routes the console mounts (sign-in, portal
 * links, the proxy's allow-list, the data API's routes), and real answers of the console match its schemas.
 */
type Spec = {
  paths: Record<
    string,
    Record<string, { responses: Record<string, { content?: Record<string, { schema: object }> }> }>
  >;
  components: {
    schemas: Record<string, object>;
    responses: Record<string, { content: Record<string, { schema: object }> }>;
  };
};
const spec = parse(readFileSync(join(repoRoot(), 'docs/openapi/console.yaml'), 'utf8')) as Spec;
const METHODS = ['get', 'post', 'patch', 'delete', 'put'];

/** `METHOD /path/{param}` for every route of an express router. */
function routesOf(router: Router, prefix: string): string[] {
  const stack = (
    router as unknown as { stack: { route?: { path: string; methods: Record<string, boolean> } }[] }
  ).stack;
  return stack.flatMap((layer) =>
    layer.route
      ? Object.keys(layer.route.methods).map(
          (m) => `${m.toUpperCase()} ${prefix}${layer.route!.path.replace(/:(\w+)/g, '{$1}')}`,
        )
      : [],
  );
}

/** The data API's routes (services/console/src/data, its router), as the brief of that module names them. */
const OPS_ROUTES = [
  'GET /api/ops/trace',
  'GET /api/ops/vehicles/{vehicle}/sessions',
  'GET /api/ops/sessions/open',
  'GET /api/ops/sessions/{sessionId}',
  'GET /api/ops/pipeline',
];

describe('docs/openapi/console.yaml', () => {
  it('documents exactly the routes the console serves', () => {
    const auth = createSessionAuth({
      settings: { adminToken: 'a'.repeat(32), sessionTtlMs: 1, portalLinkMaxTtlMs: 1 },
      signer: createTokenSigner('k'.repeat(32)),
      now: Date.now,
      logins: { inc: () => undefined } as never,
    });
    const served = [
      ...routesOf(auth.pages, '').filter((r) => r !== 'GET /'),
      ...routesOf(auth.apiRoutes, '/api'),
      ...routesOf(createNotifierProxy({ call: async () => ({ status: 200, body: null }) }), '/api/v1'),
      ...OPS_ROUTES,
    ];
    const documented = Object.entries(spec.paths).flatMap(([path, item]) =>
      Object.keys(item)
        .filter((m) => METHODS.includes(m))
        .map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect([...new Set(served)].sort()).toEqual(documented.sort());
  });

  describe('real answers', () => {
    let app: ConsoleApp;
    let base: string;
    const ajv = new Ajv2020({ strict: false });
    ajv.addFormat('date-time', (text: string) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(text));
    for (const [name, schema] of Object.entries(spec.components.schemas)) {
      ajv.addSchema(schema, `#/components/schemas/${name}`);
    }
    const check = (ref: string, body: unknown) => {
      const validate = ajv.getSchema(ref)!;
      expect({ ref, valid: validate(body), errors: validate.errors ?? null }).toEqual({
        ref,
        valid: true,
        errors: null,
      });
    };
    const adminToken = 'contract-test-admin-token-0123456789';

    beforeAll(async () => {
      const opsData: OpsData = {
        router: expressRouter(),
        start: async () => {},
        stop: async () => {},
        ready: () => true,
      };
      const registry = createMetricsRegistry('console', { defaultMetrics: false });
      app = createConsoleApp({
        settings: {
          httpPort: 0,
          httpHost: '127.0.0.1',
          // Nothing listens there: the proxied routes answer 503 notifier_unavailable.
          notifierUrl: 'http://127.0.0.1:9',
          adminToken,
          sessionKey: 'contract-test-session-key-0123456789abcdef',
          sessionTtlMs: 60_000,
          portalLinkMaxTtlMs: 3_600_000,
          notifierTimeoutMs: 1_000,
          shutdownDrainMs: 500,
        },
        opsData,
        logger: pino({ level: 'silent' }),
        registry,
      });
      await app.start();
      base = `http://127.0.0.1:${app.port()}`;
    });
    afterAll(() => app.stop());

    async function signIn(): Promise<{ cookie: string; csrf: string }> {
      const form = await fetch(`${base}/login`);
      const loginCookie = form.headers.get('set-cookie')!.split(';')[0]!;
      const csrf = /name="csrf" value="([^"]+)"/.exec(await form.text())![1]!;
      const answer = await fetch(`${base}/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie: loginCookie, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token: adminToken, csrf }).toString(),
      });
      expect(answer.status).toBe(303);
      const cookie = answer.headers
        .getSetCookie()
        .find((c) => c.startsWith('af_session='))!
        .split(';')[0]!;
      const shell = await (await fetch(`${base}/`, { headers: { cookie } })).text();
      return { cookie, csrf: /name="csrf-token" content="([^"]+)"/.exec(shell)![1]! };
    }

    it('session, portal link and error answers match their schemas', async () => {
      const { cookie, csrf } = await signIn();
      const session = await fetch(`${base}/api/session`, { headers: { cookie } });
      expect(session.status).toBe(200);
      check('#/components/schemas/Session', await session.json());

      const post = (path: string, body: unknown, headers: Record<string, string>) =>
        fetch(`${base}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify(body),
        });
      const link = await post(
        '/api/portal-links',
        { owner: 'acme', ttlMinutes: 5 },
        { cookie, 'x-csrf-token': csrf },
      );
      expect(link.status).toBe(201);
      check('#/components/schemas/PortalLink', await link.json());

      const errors: [Response, number][] = [
        [await fetch(`${base}/api/session`), 401],
        [await post('/api/portal-links', { owner: 'acme' }, { cookie }), 403],
        [await post('/api/portal-links', { owner: '<bad>' }, { cookie, 'x-csrf-token': csrf }), 400],
        [await fetch(`${base}/api/v1/endpoints`, { headers: { cookie } }), 503],
        [await fetch(`${base}/api/v1/not-allowed`, { headers: { cookie } }), 404],
      ];
      for (const [answer, status] of errors) {
        expect(answer.status).toBe(status);
        check('#/components/schemas/Error', await answer.json());
      }
    });
  });
});
