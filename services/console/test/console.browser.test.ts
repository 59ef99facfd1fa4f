// Functions passed to page.evaluate run in the browser: the DOM's types.
/// <reference lib="dom" />
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import axe from 'axe-core';
import pino from 'pino';
import { parse } from 'yaml';
import type { Browser, Page } from 'puppeteer-core';
import { createMetricsRegistry } from '@ampflow/observability';
import { repoRoot, testEndpoints, testKafka } from '@ampflow/testing';
import { buildScenario, loadTemplates, type Scenario } from '../../../packages/demo/src/scenario';
import { postDelivery } from '../../../packages/demo/src/platform';
import { signDelivery } from '../../../packages/demo/src/signing';
import { createConsoleApp, type ConsoleApp } from '../src/app';
import { createTokenSigner } from '../src/auth/tokens';
import { createOpsData } from '../src/ops-data';
import { chromiumPath, loadPuppeteer } from './browser';
import { startPlatform, startReceiver, type Platform, type Receiver } from './platform';

/**
 * The console in a real browser (Debian's chromium driven by puppeteer-core) against the real platform: the four
 * services as processes on their own topics, the console in this process, a customer receiver on loopback.
 * The demo scenario (packages/demo) is posted through the ingress, signed as the providers sign.
 * Screenshots of the main pages go to docs/img/.
 */
const SESSION_KEY = `console-browser-test-key-${'x'.repeat(16)}`;
/**
 * Where the screenshots go: .ampflow/console-screenshots (git-ignored) unless CONSOLE_SCREENSHOTS_DIR says
 * otherwise; `CONSOLE_SCREENSHOTS_DIR=docs/img` refreshes the ones the docs show (a test run leaves the tree clean).
 */
const IMG = join(repoRoot(), process.env.CONSOLE_SCREENSHOTS_DIR ?? '.ampflow/console-screenshots');
const MARKUP = '<img src=x onerror="window.__pwned=1"><b>bold</b> & more';

jest.setTimeout(180_000);

let platform: Platform;
let receiver: Receiver;
let consoleApp: ConsoleApp;
let browser: Browser;
let base: string;
let endpointId: string;
let scenario: Scenario;
const cspViolations: string[] = [];

async function postScenario(runId: string): Promise<Scenario> {
  const built = buildScenario(loadTemplates(), { runId, now: Date.now() });
  for (const delivery of built.deliveries) {
    const answer = await postDelivery(
      platform.ingress.url,
      delivery,
      signDelivery(delivery, platform.secrets, new Date()),
    );
    expect([200, 202]).toContain(answer.httpStatus);
  }
  return built;
}

async function newPage(context: { newPage(): Promise<Page> } = browser): Promise<Page> {
  const page = await context.newPage();
  await page.setViewport({ width: 1280, height: 860 });
  page.on('console', (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) cspViolations.push(message.text());
  });
  return page;
}

async function signIn(page: Page): Promise<void> {
  await page.goto(`${base}/login`);
  await page.type('#token', platform.adminToken);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  await page.waitForSelector('main h1');
}

const textOf = (page: Page, selector: string) => page.$eval(selector, (el) => el.textContent ?? '');

async function waitForText(page: Page, selector: string, pattern: RegExp, timeoutMs = 60_000): Promise<void> {
  await page.waitForFunction(
    (sel: string, source: string) => new RegExp(source).test(document.querySelector(sel)?.textContent ?? ''),
    { timeout: timeoutMs, polling: 250 },
    selector,
    pattern.source,
  );
}

async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** axe-core run in the page (through the DevTools protocol, which the page's CSP does not govern). */
async function seriousViolations(page: Page): Promise<string[]> {
  await page.evaluate(axe.source);
  const results = await page.evaluate(async () => {
    const run = (window as unknown as { axe: typeof axe }).axe.run;
    const report = await run(document, { resultTypes: ['violations'] });
    return report.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      nodes: v.nodes.map((n) => n.html).slice(0, 3),
    }));
  });
  return results
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.join(' | ')}`);
}

/**
 * The data API's answers checked against docs/openapi/console.yaml's schemas (the contract test checks the other
 * routes; these need the real data module and topics).
 */
const contract = (() => {
  const spec = parse(readFileSync(join(repoRoot(), 'docs/openapi/console.yaml'), 'utf8')) as {
    components: unknown;
  };
  const ajv = new Ajv2020({ strict: false });
  ajv.addFormat('date-time', (text: string) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(text));
  ajv.addSchema({ $id: 'console.yaml', components: spec.components });
  return (schema: string, body: unknown) => {
    const validate = ajv.getSchema(`console.yaml#/components/schemas/${schema}`)!;
    expect({ schema, valid: validate(body), errors: validate.errors ?? null }).toEqual({
      schema,
      valid: true,
      errors: null,
    });
  };
})();

/** `GET /api/ops/trace` as far as the test reads it (docs/console-data.md). */
interface TraceAnswer {
  data: {
    eventId: string;
    raw: unknown[];
    canonical: unknown[];
    sessionChanges: { session: { sessionId: string } }[];
    webhooks: { messageId: string; attempts: { status: string }[] | null }[];
  }[];
}

const shot = (page: Page, name: string, fullPage = false) =>
  page.screenshot({ path: join(IMG, `console-${name}.png`), fullPage });

/** The operator calls the notifier's admin API directly (set-up the page is not under test for). */
async function notifierCall(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${platform.notifier.url}/v1${path}`, {
    method,
    headers: {
      authorization: `Bearer ${platform.adminToken}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

beforeAll(async () => {
  mkdirSync(IMG, { recursive: true });
  [platform, receiver] = await Promise.all([startPlatform(), startReceiver()]);
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const registry = createMetricsRegistry('console', { defaultMetrics: false });
  consoleApp = createConsoleApp({
    settings: {
      httpPort: 0,
      httpHost: '127.0.0.1',
      notifierUrl: platform.notifier.url,
      adminToken: platform.adminToken,
      sessionKey: SESSION_KEY,
      sessionTtlMs: 3_600_000,
      portalLinkMaxTtlMs: 24 * 3_600_000,
      notifierTimeoutMs: 5_000,
      shutdownDrainMs: 1_000,
    },
    opsData: createOpsData({
      kafka: testKafka(),
      schemaRegistryUrl: testEndpoints().schemaRegistryUrl,
      topicPrefix: platform.prefix,
      metricsTargets: [{ service: 'notifier', url: `${platform.notifier.url}/metrics` }],
      notifier: { baseUrl: platform.notifier.url, adminToken: platform.adminToken },
      logger,
      registry,
    }),
    logger,
    registry,
  });
  await consoleApp.start();
  base = `http://127.0.0.1:${consoleApp.port()}`;
  const puppeteer = await loadPuppeteer();
  browser = await puppeteer.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
});

afterAll(async () => {
  await browser?.close();
  await consoleApp?.stop();
  await receiver?.close();
  await platform?.stop();
});

describe('the console in a browser', () => {
  it('refuses a wrong admin token, then signs in with the right one into an httpOnly SameSite=Strict session', async () => {
    const page = await newPage();
    const login = await page.goto(`${base}/`);
    expect(page.url()).toBe(`${base}/login`);
    const csp = login!.headers()['content-security-policy'];
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    await shot(page, 'login');
    await page.type('#token', 'not-the-admin-token');
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    expect(await textOf(page, '#login-error')).toMatch(/not the admin token/);

    await signIn(page);
    const session = (await browser.cookies()).find((c) => c.name === 'af_session');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    // The admin token is nowhere in the page the browser holds.
    expect(await page.content()).not.toContain(platform.adminToken);
    expect(await page.$$eval('script:not([src])', (scripts) => scripts.length)).toBe(0);
    await page.close();
  });

  it('creates an endpoint to a local receiver and shows a description with markup as text', async () => {
    const page = await newPage();
    await signIn(page);
    await waitForText(page, 'main h1', /Endpoints/);
    await page.click('main .view > button');
    await page.waitForSelector('#detail form');
    const fill = async (name: string, value: string) => page.type(`#detail [name=${name}]`, value);
    await fill('url', receiver.url);
    await fill('description', MARKUP);
    await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/api/v1/endpoints') && r.request().method() === 'POST'),
      page.click('#detail button[type=submit]'),
    ]);
    await page.waitForSelector('table');
    endpointId = await page.$eval('table tbody tr td code', (el) => el.textContent ?? '');
    expect(endpointId).toMatch(/^ep_/);
    expect(await textOf(page, 'table tbody tr .description')).toBe(MARKUP);
    expect(await page.$$eval('table tbody img, table tbody b', (els) => els.length)).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    await page.close();
  });

  it('shows the demo scenario’s deliveries with their attempts', async () => {
    scenario = await postScenario(`console-${Date.now().toString(36)}`);
    const expected = scenario.expected.webhooks.length;
    await until(() => receiver.received.length >= Math.min(expected, 1), 'the first webhook at the receiver');
    const page = await newPage();
    await signIn(page);
    await page.goto(`${base}/#/messages`);
    await page.waitForSelector('select[name=endpointId] option');
    await page.select('select[name=endpointId]', endpointId);
    await waitForText(page, '#attempts', /succeeded/);
    const rows = await page.$$eval('#attempts tbody tr', (trs) => trs.map((tr) => tr.textContent ?? ''));
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((row) => row.includes(endpointId))).toBe(true);
    await shot(page, 'messages');
    await page.close();
  });

  it('traces one of the demo’s provider events from its raw record to the customer webhooks and their attempts', async () => {
    const delivery = scenario.deliveries.find(
      (d) => d.provider === 'smartcar' && /charging 39/.test(d.label),
    );
    expect(delivery).toBeDefined();
    const page = await newPage();
    await signIn(page);
    await page.goto(`${base}/#/trace`);
    await page.waitForSelector('input[name=eventId]');
    await page.type('input[name=eventId]', delivery!.providerEventId);
    // The index reads the topics as they fill and the webhooks are delivered meanwhile: asked again until the
    // whole way is there, as an operator would press Trace again.
    let answer: TraceAnswer = { data: [] };
    await until(async () => {
      const [response] = await Promise.all([
        page.waitForResponse((r) => r.url().includes('/api/ops/trace?')),
        page.click('main form button[type=submit]'),
      ]);
      answer = (await response.json()) as TraceAnswer;
      const trace = answer.data?.[0];
      return (
        trace !== undefined &&
        trace.raw.length > 0 &&
        trace.canonical.length > 0 &&
        trace.sessionChanges.length > 0 &&
        trace.webhooks.length > 0 &&
        trace.webhooks.every((w) => (w.attempts ?? []).some((a) => a.status === 'succeeded'))
      );
    }, 'the whole trace of the demo’s charging reading');
    contract('OpsTraces', answer);
    const trace = answer.data[0]!;
    expect(trace.eventId).toBe(`smartcar:${delivery!.providerEventId}`);
    await page.waitForSelector('#trace-results article');
    const text = await textOf(page, '#trace-results');
    expect(text).toMatch(/holds \d+ now/);
    expect(text).toContain(`${platform.prefix}ev.raw.smartcar.v1`);
    expect(text).toContain(`${platform.prefix}ev.vehicle-telemetry.v1`);
    expect(text).toContain(trace.sessionChanges[0]!.session.sessionId);
    for (const webhook of trace.webhooks) {
      expect(text).toContain(webhook.messageId);
      expect(text).toContain(`Attempts of ${webhook.messageId}`);
    }
    // Each webhook's attempts table shows the receiver's endpoint and its success.
    const attemptRows = await page.$$eval('#trace-results table', (tables) =>
      tables
        .filter((t) => /^Attempts of /.test(t.querySelector('caption')?.textContent ?? ''))
        .map((t) => t.querySelector('tbody')?.textContent ?? ''),
    );
    expect(attemptRows).toHaveLength(trace.webhooks.length);
    for (const rows of attemptRows) expect(rows).toContain(endpointId);
    expect(await seriousViolations(page)).toEqual([]);
    await shot(page, 'ops-trace', true);
    await page.close();
  });

  it('shows the demo’s charging session of a vehicle with its SOC and power chart drawn from the telemetry', async () => {
    const vehicle = scenario.vehicles.smartcar.vehicleId;
    const page = await newPage();
    await signIn(page);
    await page.goto(`${base}/#/sessions`);
    await page.waitForSelector('input[name=vehicle]');
    await page.type('input[name=vehicle]', vehicle);
    await until(async () => {
      await page.click('main form button[type=submit]');
      await new Promise((r) => setTimeout(r, 300));
      return /FULLY_CHARGED/i.test(await textOf(page, '#session-list'));
    }, 'the demo’s ended session in the Sessions view');
    contract(
      'OpsSessions',
      await page.evaluate(
        (v: string) => fetch(`/api/ops/vehicles/${encodeURIComponent(v)}/sessions`).then((r) => r.json()),
        vehicle,
      ),
    );
    contract('OpsSessions', await page.evaluate(() => fetch('/api/ops/sessions/open').then((r) => r.json())));
    const row = await textOf(page, '#session-list tbody');
    expect(row).toContain(vehicle);
    const [response] = await Promise.all([
      page.waitForResponse((r) => /\/api\/ops\/sessions\/[^/]+$/.test(r.url())),
      page.click('#session-list tbody button'),
    ]);
    const body: unknown = await response.json();
    contract('OpsSessionDetail', body);
    const detail = body as {
      session: { vehicleId: string };
      series: { socPercent: number | null }[];
    };
    expect(detail.session.vehicleId).toBe(vehicle);
    expect(detail.series.length).toBeGreaterThan(0);
    expect(detail.series.some((p) => typeof p.socPercent === 'number')).toBe(true);
    await page.waitForSelector('#session-chart canvas');
    const label = await page.$eval('#session-chart canvas', (c) => c.getAttribute('aria-label') ?? '');
    expect(label).toMatch(/SOC % \d+/);
    // The canvas is drawn: some of its pixels are painted.
    const painted = await page.$eval('#session-chart canvas', (c) => {
      const canvas = c as HTMLCanvasElement;
      const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
      let n = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) n += 1;
      return n;
    });
    expect(painted).toBeGreaterThan(0);
    expect(await seriousViolations(page)).toEqual([]);
    await shot(page, 'ops-sessions', true);
    await page.close();
  });

  it('charts the pipeline from the platform’s consumer groups and the notifier’s metrics', async () => {
    const page = await newPage();
    await signIn(page);
    await page.goto(`${base}/#/pipeline`);
    await page.waitForFunction(() => document.querySelectorAll('main canvas').length === 4);
    // The view refreshes every 5 s; the platform's groups show once they have committed (after the demo).
    await page.waitForFunction(
      (group: string) =>
        Array.from(document.querySelectorAll('main canvas')).some((c) =>
          (c.getAttribute('aria-label') ?? '').includes(group),
        ),
      { timeout: 30_000, polling: 500 },
      `${platform.prefix}normalizer`,
    );
    const answer = await page.evaluate(() => fetch('/api/ops/pipeline').then((r) => r.json()));
    contract('OpsPipeline', answer);
    expect(answer.data.length).toBeGreaterThan(0);
    const labels = (
      await page.$$eval('main canvas', (cs) => cs.map((c) => c.getAttribute('aria-label') ?? ''))
    ).join('\n');
    // The platform's own consumer groups (on this test's prefix) have a lag line.
    expect(labels).toContain(`${platform.prefix}normalizer`);
    expect(labels).toMatch(/Records per second per service: notifier /);
    expect(labels).toMatch(/Deliveries per second and failure rate: deliveries\/s /);
    expect(await seriousViolations(page)).toEqual([]);
    await shot(page, 'ops-pipeline');
    await page.close();
  });

  it('shows failed attempts and dead letters while the receiver fails; retry and recover deliver them', async () => {
    receiver.setFailing(true);
    const before = receiver.received.length;
    const failedAt = new Date(Date.now() - 1_000);
    await postScenario(`console-fail-${Date.now().toString(36)}`);
    const page = await newPage();
    await signIn(page);
    await page.goto(`${base}/#/dead-letters`);
    await page.waitForSelector('select[name=endpointId] option');
    // Two attempts (now and 1 s later), then the dead letter; the view is reloaded until it shows.
    await until(async () => {
      await page.select('select[name=endpointId]', '');
      await page.select('select[name=endpointId]', endpointId);
      await new Promise((r) => setTimeout(r, 500));
      return /HTTP 500/.test(await textOf(page, 'main'));
    }, 'a dead letter in the page');
    expect(receiver.received.length).toBeGreaterThan(before);
    await shot(page, 'dead-letters');

    receiver.setFailing(false);
    const delivered = receiver.received.length;
    await Promise.all([
      page.waitForResponse((r) => /\/api\/v1\/messages\/[^/]+\/retry$/.test(r.url()) && r.status() === 202),
      page.click('main tbody tr button'),
    ]);
    await until(() => receiver.received.length > delivered, 'the retried delivery');
    await waitForText(page, '#status', /Retry queued \(1\)/);

    // Recover: every dead letter of the endpoint since the failure began, from the Messages view.
    await page.goto(`${base}/#/messages`);
    await page.waitForSelector('select[name=endpointId] option');
    await page.select('select[name=endpointId]', endpointId);
    await waitForText(page, '#attempts', /failed/);
    const local = new Date(failedAt.getTime() - failedAt.getTimezoneOffset() * 60_000)
      .toISOString()
      .slice(0, 16);
    await page.$eval(
      'input[name=recoverSince]',
      (el, value) => ((el as HTMLInputElement).value = value),
      local,
    );
    const recovered = receiver.received.length;
    await page.click('form[aria-label="Recover endpoint"] button[type=submit]');
    await waitForText(page, '#status', /Recovery queued [1-9]\d* messages/);
    await until(() => receiver.received.length > recovered, 'the recovered deliveries');
    await page.close();
  });

  it('refuses a state-changing request without the CSRF token (403), and accepts it with the token', async () => {
    const page = await newPage();
    await signIn(page);
    const statuses = await page.evaluate(async (id: string) => {
      const patch = (headers: Record<string, string>) =>
        fetch(`/api/v1/endpoints/${id}`, {
          method: 'PATCH',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify({ throttleRate: 50 }),
        }).then((r) => r.status);
      const token = document.querySelector<HTMLMetaElement>('meta[name=csrf-token]')!.content;
      return {
        none: await patch({}),
        wrong: await patch({ 'x-csrf-token': 'wrong' }),
        mint: await fetch('/api/portal-links', {
          method: 'POST',
          body: '{"owner":"x"}',
          headers: { 'content-type': 'application/json' },
        }).then((r) => r.status),
        right: await patch({ 'x-csrf-token': token }),
      };
    }, endpointId);
    expect(statuses).toEqual({ none: 403, wrong: 403, mint: 403, right: 200 });
    // The API refuses a request with no session at all.
    expect((await fetch(`${base}/api/v1/endpoints`)).status).toBe(401);
    await page.close();
  });

  it('a portal link shows its owner’s endpoint and messages; another owner’s endpoint is unreachable by page and API', async () => {
    // Two customers' endpoints (filtered to no vehicle: they get only what is sent to them), and a test event
    // to acme's, so acme's portal has a message to show.
    const create = async (owner: string) => {
      const answer = await notifierCall('POST', '/endpoints', {
        url: receiver.url,
        owner,
        description: `${owner}'s endpoint`,
        vehicleIds: [`none:${owner}`],
      });
      expect(answer.status).toBe(201);
      return String(answer.body.id);
    };
    const acmeId = await create('acme');
    const globexId = await create('globex');
    const sent = await notifierCall('POST', `/endpoints/${acmeId}/test`, {});
    expect(sent.status).toBe(202);
    const page = await newPage();
    await signIn(page);
    await page.goto(`${base}/#/portal-links`);
    await page.waitForSelector('input[name=owner]');
    await page.type('input[name=owner]', 'acme');
    await page.click('main form button[type=submit]');
    await page.waitForSelector('#portal-link-url');
    const link = await page.$eval('#portal-link-url', (el) => (el as HTMLInputElement).value);
    expect(link).toMatch(new RegExp(`^${base}/portal/`));
    await shot(page, 'portal-links');
    await page.close();

    const context = await browser.createBrowserContext();
    const portal = await newPage(context);
    await portal.goto(link);
    await waitForText(portal, '#who', /Portal: acme/);
    await waitForText(portal, 'main table', new RegExp(acmeId));
    const listed = await portal.$$eval('main table tbody tr td code', (els) =>
      els.map((el) => el.textContent),
    );
    expect(listed).toEqual([acmeId]);
    expect(await portal.content()).not.toContain(endpointId);
    expect(await portal.content()).not.toContain(globexId);
    const navigation = await portal.$$eval('nav a', (as) => as.map((a) => a.textContent));
    expect(navigation).toEqual(['Endpoints', 'Messages', 'Dead letters']);
    await shot(portal, 'portal');
    // acme's messages: its endpoint is the only one to choose, and its test event's delivery is shown.
    await portal.goto(`${base}/#/messages`);
    await portal.waitForSelector('select[name=endpointId] option');
    const options = await portal.$$eval('select[name=endpointId] option', (os) =>
      os.map((o) => (o as HTMLOptionElement).value).filter(Boolean),
    );
    expect(options).toEqual([acmeId]);
    await portal.select('select[name=endpointId]', acmeId);
    await waitForText(portal, '#attempts', /succeeded/);
    expect(await textOf(portal, '#attempts')).toContain(acmeId);
    expect(await portal.content()).not.toContain(globexId);

    const own = await portal.evaluate(async (id: string) => {
      const get = (path: string) =>
        fetch(path).then(async (r) => ({ status: r.status, body: await r.json() }));
      return {
        list: await get('/api/v1/endpoints'),
        get: await get(`/api/v1/endpoints/${id}`),
        attempts: await get(`/api/v1/endpoints/${id}/attempts`),
        messages: await get(`/api/v1/messages?endpointId=${id}`),
      };
    }, acmeId);
    expect(own.list.body.data.map((e: { id: string }) => e.id)).toEqual([acmeId]);
    expect(own.get).toMatchObject({ status: 200, body: { id: acmeId, owner: 'acme' } });
    expect(own.attempts.status).toBe(200);
    expect(own.attempts.body.data.length).toBeGreaterThan(0);
    expect(own.messages.status).toBe(200);
    expect(own.messages.body.data.map((m: { type?: string }) => m.type)).toContain('endpoint.test');

    for (const other of [endpointId, globexId]) {
      const status = await portal.evaluate(async (id: string) => {
        const token = document.querySelector<HTMLMetaElement>('meta[name=csrf-token]')!.content;
        const call = (method: string, path: string, body?: unknown) =>
          fetch(path, {
            method,
            headers: { 'content-type': 'application/json', 'x-csrf-token': token },
            body: body === undefined ? undefined : JSON.stringify(body),
          }).then(async (r) => ({ status: r.status, body: await r.text() }));
        return {
          list: await call('GET', '/api/v1/endpoints'),
          get: (await call('GET', `/api/v1/endpoints/${id}`)).status,
          secret: (await call('GET', `/api/v1/endpoints/${id}/secret`)).status,
          attempts: (await call('GET', `/api/v1/endpoints/${id}/attempts`)).status,
          patch: (await call('PATCH', `/api/v1/endpoints/${id}`, { enabled: false })).status,
          remove: (await call('DELETE', `/api/v1/endpoints/${id}`)).status,
          recover: (
            await call('POST', `/api/v1/endpoints/${id}/recover`, { since: new Date(0).toISOString() })
          ).status,
          deadLetters: (await call('GET', `/api/v1/dead-letters?endpointId=${id}`)).status,
          allDeadLetters: (await call('GET', '/api/v1/dead-letters')).status,
          messages: (await call('GET', `/api/v1/messages?endpointId=${id}`)).status,
          retryAll: (await call('POST', '/api/v1/messages/retry', { endpointId: id })).status,
          trace: (await call('GET', '/api/ops/trace?vehicle=x')).status,
          pipeline: (await call('GET', '/api/ops/pipeline')).status,
          mint: (await call('POST', '/api/portal-links', { owner: 'globex' })).status,
        };
      }, endpointId);
      expect(JSON.parse(status.list.body).data.map((e: { id: string }) => e.id)).toEqual([acmeId]);
      expect({ other, ...status, list: undefined }).toMatchObject({
        other,
        get: 404,
        secret: 404,
        attempts: 404,
        patch: 404,
        remove: 404,
        recover: 404,
        deadLetters: 404,
        allDeadLetters: 400,
        messages: 404,
        retryAll: 404,
        trace: 403,
        pipeline: 403,
        mint: 403,
      });
      // The other owner's (and the operator's) endpoint is untouched by the refused calls.
      expect((await notifierCall('GET', `/endpoints/${other}`)).body).toMatchObject({
        id: other,
        enabled: true,
      });
    }
    await context.close();
  });

  it('refuses an expired or tampered portal link', async () => {
    const signer = createTokenSigner(SESSION_KEY);
    const expired = signer.sign('portal-link', { owner: 'acme', exp: Date.now() - 1_000 });
    const valid = signer.sign('portal-link', { owner: 'acme', exp: Date.now() + 60_000 });
    const [, mac] = valid.split('.');
    const tampered = `${Buffer.from(JSON.stringify({ owner: 'globex', exp: Date.now() + 60_000 })).toString('base64url')}.${mac}`;
    const context = await browser.createBrowserContext();
    const page = await newPage(context);
    for (const [token, message] of [
      [expired, /expired/],
      [tampered, /not valid/],
    ] as const) {
      const response = await page.goto(`${base}/portal/${token}`);
      expect(response!.status()).toBe(403);
      expect(await textOf(page, 'main')).toMatch(message);
      expect((await context.cookies()).find((c) => c.name === 'af_session')).toBeUndefined();
    }
    await context.close();
  });

  it('is usable by keyboard, its controls are labelled, axe finds no serious violation, and the CSP holds', async () => {
    const page = await newPage();
    await signIn(page);
    await waitForText(page, 'main h1', /Endpoints/);
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
    // Tab to the navigation's Messages link and open it with Enter: focus lands on the new view's heading.
    for (let i = 0; i < 10; i++) {
      await page.keyboard.press('Tab');
      if ((await page.evaluate(() => document.activeElement?.textContent)) === 'Messages') break;
    }
    await page.keyboard.press('Enter');
    await waitForText(page, 'main h1', /Messages/);
    expect(await page.evaluate(() => document.activeElement?.tagName)).toBe('H1');
    const unlabelled = await page.$$eval(
      'main input, main select, main button',
      (els) =>
        els.filter(
          (el) =>
            !(el as HTMLInputElement).labels?.length &&
            !el.getAttribute('aria-label') &&
            !el.textContent?.trim(),
        ).length,
    );
    expect(unlabelled).toBe(0);
    const views: Record<string, string> = {
      endpoints: 'Endpoints',
      messages: 'Messages',
      'dead-letters': 'Dead letters',
      'portal-links': 'Portal links',
      trace: 'Event trace',
      sessions: 'Charging sessions',
    };
    /** Opens a view and waits until it is drawn (its heading, and its data loaded). */
    const open = async (view: string) => {
      await page.goto(`${base}/#/${view}`);
      await page.waitForFunction(
        (title: string) =>
          document.querySelector('main h1')?.textContent === title &&
          document.querySelector('main')?.getAttribute('aria-busy') === 'false',
        {},
        views[view]!,
      );
    };
    for (const view of Object.keys(views)) {
      await open(view);
      expect({ view, violations: await seriousViolations(page) }).toEqual({ view, violations: [] });
    }
    await open('endpoints');
    await page.waitForSelector('table');
    await shot(page, 'endpoints');
    expect(cspViolations).toEqual([]);
    await page.close();
  });
});
