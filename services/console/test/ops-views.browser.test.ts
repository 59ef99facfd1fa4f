// Functions passed to page.evaluate run in the browser: the DOM's types.
/// <reference lib="dom" />
import axe from 'axe-core';
import { Router } from 'express';
import pino from 'pino';
import type { Browser, Page } from 'puppeteer-core';
import { createMetricsRegistry } from '@ampflow/observability';
import { createConsoleApp, type ConsoleApp } from '../src/app';
import { chromiumPath, loadPuppeteer } from './browser';

/**
 * The operator's Trace, Sessions and Pipeline views in the browser: that they render what the data API answers
 * (its answers' shapes, services/console/src/data), draw their charts under the page's CSP, and stay accessible.
 * The data API itself is tested with real Kafka in its own tests; here a router answering in its shapes stands in,
 * so that these views are checked whether or not the topics hold anything. (The screenshots of these views are
 * taken by console.browser.test.ts, with the demo scenario's real data.)
 */
const ADMIN = 'ops-views-admin-token-0123456789abcdef';
const SESSION = {
  sessionId: 'ses_1',
  vehicleId: 'smartcar:veh-1',
  provider: 'smartcar',
  status: 'ended',
  startedAt: '2026-12-06T10:00:00.000Z',
  endedAt: '2026-12-06T11:00:00.000Z',
  durationSeconds: 3600,
  energyAddedKwh: 21.5,
  energySource: 'reported',
  socStartPercent: 40,
  socEndPercent: 80,
  maxPowerKw: 22,
  endReason: 'unplugged',
  eventCount: 4,
  version: 3,
};
const record = (topic: string, value: unknown) => ({
  topic,
  partition: 0,
  offset: '7',
  timestamp: '2026-12-06T10:00:00.000Z',
  key: 'smartcar:veh-1',
  headers: {},
  value,
});

function dataRouter(): Router {
  const router = Router();
  router.get('/trace', (_req, res) => {
    res.json({
      retention: {
        maxEvents: 100_000,
        maxAgeMs: 86_400_000,
        heldRecords: 12,
        oldestRecordAt: '2026-12-06T09:00:00.000Z',
      },
      data: [
        {
          eventId: 'smartcar:evt-1',
          raw: [record('ev.raw.smartcar.v1', { eventId: 'evt-1', note: '<script>alert(1)</script>' })],
          deadLetters: [],
          canonical: [record('ev.vehicle-telemetry.v1', { eventId: 'smartcar:evt-1', batteryPercent: 40 })],
          sessionChanges: [
            { ...record('ev.charging-sessions.v1', {}), session: SESSION, attribution: 'started' },
          ],
          webhooks: [
            {
              messageId: 'msg_a',
              type: 'charging_session.started',
              sourceId: 'ses_1:1',
              attempts: [
                {
                  messageId: 'msg_a',
                  endpointId: 'ep_x',
                  attempt: 1,
                  status: 'succeeded',
                  httpStatus: 204,
                  durationMs: 12,
                  responseExcerpt: null,
                  error: null,
                  at: '2026-12-06T10:00:01.000Z',
                  next: 'done',
                },
              ],
            },
          ],
        },
      ],
    });
  });
  router.get('/vehicles/:vehicle/sessions', (_req, res) => res.json({ data: [SESSION] }));
  router.get('/sessions/open', (_req, res) =>
    res.json({
      data: [
        {
          ...SESSION,
          sessionId: 'ses_2',
          status: 'charging',
          endedAt: null,
          endReason: null,
          socEndPercent: null,
          energyAddedKwh: 4.2,
        },
      ],
    }),
  );
  router.get('/sessions/:id', (_req, res) => {
    const series = Array.from({ length: 7 }, (_, i) => ({
      at: new Date(Date.parse(SESSION.startedAt) + i * 600_000).toISOString(),
      socPercent: 40 + i * 6,
      powerKw: i === 6 ? 0 : 22,
    }));
    res.json({ session: SESSION, series, seriesComplete: true });
  });
  router.get('/pipeline', (_req, res) => {
    const data = Array.from({ length: 6 }, (_, i) => ({
      at: new Date(Date.now() - (6 - i) * 5_000).toISOString(),
      consumerLag: { 'ampflow-normalizer': i, 'ampflow-notifier': 6 - i },
      recordsPerSecond: { ingress: 10 + i, normalizer: 9 + i },
      deadLetters: { 'ev.raw.smartcar.v1.dlq': 1 },
      deliveriesPerSecond: 5,
      failureRate: 0.1,
      errors: [],
    }));
    res.json({ intervalMs: 5_000, data });
  });
  return router;
}

let app: ConsoleApp;
let browser: Browser;
let page: Page;
let base: string;
const cspViolations: string[] = [];

beforeAll(async () => {
  app = createConsoleApp({
    settings: {
      httpPort: 0,
      httpHost: '127.0.0.1',
      notifierUrl: 'http://127.0.0.1:9',
      adminToken: ADMIN,
      sessionKey: 'ops-views-session-key-0123456789abcdef',
      sessionTtlMs: 60_000,
      portalLinkMaxTtlMs: 3_600_000,
      notifierTimeoutMs: 1_000,
      shutdownDrainMs: 500,
    },
    opsData: { router: dataRouter(), start: async () => {}, stop: async () => {}, ready: () => true },
    logger: pino({ level: 'silent' }),
    registry: createMetricsRegistry('console', { defaultMetrics: false }),
  });
  await app.start();
  base = `http://127.0.0.1:${app.port()}`;
  browser = await (
    await loadPuppeteer()
  ).launch({
    executablePath: chromiumPath(),
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) cspViolations.push(m.text());
  });
  await page.goto(`${base}/login`);
  await page.type('#token', ADMIN);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
});

afterAll(async () => {
  await browser?.close();
  await app?.stop();
});

async function serious(): Promise<string[]> {
  await page.evaluate(axe.source);
  const violations = await page.evaluate(async () => {
    const report = await (window as unknown as { axe: typeof axe }).axe.run(document, {
      resultTypes: ['violations'],
    });
    return report.violations.map((v) => ({ id: v.id, impact: v.impact }));
  });
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id);
}

const canvases = () => page.$$eval('main canvas', (cs) => cs.map((c) => c.getAttribute('aria-label') ?? ''));

describe('the operator views in a browser', () => {
  it('traces an event from raw record to webhook attempts, markup in records shown as text', async () => {
    await page.goto(`${base}/#/trace`);
    await page.waitForSelector('input[name=eventId]');
    await page.type('input[name=eventId]', 'smartcar:evt-1');
    await page.click('main form button[type=submit]');
    await page.waitForSelector('#trace-results article');
    const text = await page.$eval('#trace-results', (el) => el.textContent ?? '');
    expect(text).toContain('holds 12');
    expect(text).toContain('ev.raw.smartcar.v1');
    expect(text).toContain('ev.vehicle-telemetry.v1');
    expect(text).toContain('ses_1');
    expect(text).toContain('msg_a');
    expect(text).toContain('<script>alert(1)</script>');
    expect(await page.$$eval('#trace-results script', (s) => s.length)).toBe(0);
    expect(await serious()).toEqual([]);
  });

  it('lists a vehicle’s sessions and open sessions, and charts SOC and power', async () => {
    await page.goto(`${base}/#/sessions`);
    await page.waitForFunction(() =>
      /ses_2/.test(document.querySelector('#open-sessions')?.textContent ?? ''),
    );
    await page.type('input[name=vehicle]', 'smartcar:veh-1');
    await page.click('main form button[type=submit]');
    await page.waitForFunction(() =>
      /unplugged/.test(document.querySelector('#session-list')?.textContent ?? ''),
    );
    expect(await page.$eval('#session-list', (el) => el.textContent)).toMatch(/40 %.*80 %/);
    await page.click('#session-list button');
    await page.waitForSelector('#session-chart canvas');
    expect(await canvases()).toEqual([expect.stringMatching(/SOC %.* 76.*Power kW 0/)]);
    expect(await serious()).toEqual([]);
  });

  it('draws the pipeline’s four charts and refreshes them', async () => {
    await page.goto(`${base}/#/pipeline`);
    await page.waitForFunction(() => document.querySelectorAll('main canvas').length === 4);
    const labels = await canvases();
    expect(labels.join('\n')).toMatch(/Consumer lag.*ampflow-normalizer 5/);
    expect(labels.join('\n')).toMatch(/Dead letters per topic: ev.raw.smartcar.v1.dlq 1/);
    const first = await page.$eval('main p', (p) => p.textContent);
    await page.waitForFunction(
      (before) => document.querySelector('main p')?.textContent !== before,
      { timeout: 15_000 },
      first,
    );
    expect(await serious()).toEqual([]);
    expect(cspViolations).toEqual([]);
  });
});
