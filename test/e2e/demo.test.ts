import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { testEndpoints, uniqueName } from '@ampflow/testing';
import type { DemoConfig } from '../../packages/demo/src/config';
import { DemoExit, NOT_RUNNING_MESSAGE, cleanUpDemo, runDemo } from '../../packages/demo/src/demo';
import { ADMIN_TOKEN, startNotifier } from '../../services/notifier/test/harness';
import { createInProcessPipeline } from './pipeline';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const AMT = 'e2e-demo-management-token';
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

/** The four services in this process on their own topics (`<prefix>.`), consumer groups and Redis namespaces. */
async function startPlatform() {
  const prefix = uniqueName('demo');
  const pipeline = createInProcessPipeline({
    prefix,
    managementToken: AMT,
    telematicaSecret: SECRET,
    logger,
  });
  // As `npm start` configures it (harness defaults): the demo's sink is an http:// endpoint on loopback.
  const notifier = await startNotifier({}, { prefix: `${prefix}.` });
  await pipeline.start();
  const urls = pipeline.urls();
  const config: DemoConfig = {
    KAFKA_BROKERS: testEndpoints().kafkaBrokers,
    KAFKA_TOPIC_PREFIX: `${prefix}.`,
    SCHEMA_REGISTRY_URL: testEndpoints().schemaRegistryUrl,
    DEMO_INGRESS_URL: urls.ingress,
    DEMO_NORMALIZER_URL: urls.normalizer,
    DEMO_AGGREGATOR_URL: urls.aggregator,
    DEMO_NOTIFIER_URL: `http://127.0.0.1:${notifier.app.port()}`,
    DEMO_TIMEOUT_MS: 60_000,
    LOG_LEVEL: 'silent',
    SMARTCAR_MANAGEMENT_TOKEN: AMT,
    TELEMATICA_WEBHOOK_SECRET: SECRET,
    NOTIFIER_ADMIN_TOKEN: ADMIN_TOKEN,
  };
  return {
    config,
    async stop() {
      await pipeline.stop();
      await notifier.stop();
    },
  };
}

/** Waits until every service says it is ready, as `npm start` does before it prints its URLs. */
async function waitReady(config: DemoConfig) {
  const urls = [
    config.DEMO_INGRESS_URL,
    config.DEMO_NORMALIZER_URL,
    config.DEMO_AGGREGATOR_URL,
    config.DEMO_NOTIFIER_URL,
  ];
  for (let attempt = 0; ; attempt += 1) {
    const statuses = await Promise.all(urls.map((u) => fetch(`${u}/readyz`).then((r) => r.status)));
    if (statuses.every((s) => s === 200)) return;
    if (attempt >= 120) throw new Error(`services not ready: ${statuses.join(', ')}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function captured() {
  let text = '';
  return {
    stream: { write: (chunk: string) => (text += chunk), isTTY: false },
    text: () => text,
  };
}

it('runs the scenario against the four services and verifies every record, session and webhook', async () => {
  const platform = await startPlatform();
  try {
    await waitReady(platform.config);
    const out = captured();
    const code = await runDemo(
      platform.config,
      { stdout: out.stream, logger },
      { runId: uniqueName('r').slice(-8) },
    );
    const text = out.text();
    // The output says what went wrong when the code is not 0.
    expect({ code, text }).toEqual({ code: DemoExit.ok, text: expect.stringContaining('OK: ') });
    expect(text).toContain('OK: 18/18 records, 8/8 session changes, 30/30 verified webhooks, as expected.');
    // The duplicate was answered 200 "duplicate"; the late reading is marked in the records table.
    expect(text).toMatch(/18 +telematica +soc 55% again \(same event id\) +msg_demo\S+ +200 duplicate/);
    expect(text).toContain('← late: older than a reading already applied');
    expect(text).toMatch(/ENDED v4 .* FULLY_CHARGED/);
    expect(text).toMatch(/ENDED v4 .* CHARGING_STOPPED/);
    expect(text).toMatch(/device\.connected +telematica:\S+ +BMW X2 xDrive25e 2022/);

    // The demo endpoint stays for the console (owner `demo`); the next run reuses it rather than adding one,
    // and `--cleanup` removes it.
    const demoEndpoints = async () => {
      const list = await fetch(`${platform.config.DEMO_NOTIFIER_URL}/v1/endpoints`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      return ((await list.json()) as { data: { id: string; owner: string | null }[] }).data;
    };
    const [kept, ...others] = await demoEndpoints();
    expect(others).toEqual([]);
    expect(kept).toMatchObject({ owner: 'demo' });
    expect(text).toContain(`demo endpoint ${kept!.id} (owner demo, created)`);

    const again = captured();
    const secondCode = await runDemo(
      platform.config,
      { stdout: again.stream, logger },
      { runId: uniqueName('r').slice(-8) },
    );
    expect({ code: secondCode, text: again.text() }).toEqual({
      code: DemoExit.ok,
      text: expect.stringContaining(
        'OK: 18/18 records, 8/8 session changes, 30/30 verified webhooks, as expected.',
      ),
    });
    expect(again.text()).toContain(`demo endpoint ${kept!.id} (owner demo, reused)`);
    expect((await demoEndpoints()).map((e) => e.id)).toEqual([kept!.id]);

    const cleanup = captured();
    expect(await cleanUpDemo(platform.config, { stdout: cleanup.stream, logger })).toBe(DemoExit.ok);
    expect(cleanup.text()).toContain(`deleted demo endpoint ${kept!.id}`);
    expect(await demoEndpoints()).toEqual([]);
  } finally {
    await platform.stop();
  }
  // Two runs of the demo (the second reuses the first's endpoint) and the clean-up.
}, 180_000);

it('exits 3 with a clear message when the platform is not running', async () => {
  // A port that was just free: nothing answers there.
  const port = await new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port: p } = server.address() as AddressInfo;
      server.close(() => resolve(p));
    });
  });
  const closed = `http://127.0.0.1:${port}`;
  const out = captured();
  const config = {
    DEMO_INGRESS_URL: closed,
    DEMO_NORMALIZER_URL: closed,
    DEMO_AGGREGATOR_URL: closed,
    DEMO_NOTIFIER_URL: closed,
  } as DemoConfig;
  expect(await runDemo(config, { stdout: out.stream, logger })).toBe(DemoExit.platformDown);
  expect(out.text()).toContain(NOT_RUNNING_MESSAGE);
  expect(out.text()).toContain(`ingress (${closed}): no answer`);
});
