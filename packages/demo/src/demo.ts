import { randomBytes } from 'node:crypto';
import { createAvroCodec, createKafka, createRegistryClient } from '@ampflow/kafka';
import type { Logger } from '@ampflow/observability';
import { formatTable } from '@ampflow/ops';
import type { DemoConfig } from './config';
import { assess, progressLine, webhookVehicle, type IngressAnswer, type Progress } from './outcome';
import {
  DEMO_OWNER,
  checkPlatform,
  createAdminClient,
  postDelivery,
  type AdminClient,
  type ServiceUrls,
} from './platform';
import {
  renderRecords,
  renderSessions,
  renderVehicles,
  renderVerdict,
  renderWebhooks,
  shortId,
} from './render';
import { buildScenario, loadTemplates, type Scenario, type Templates } from './scenario';
import { signDelivery } from './signing';
import { startSink } from './sink';
import { startWatcher } from './watcher';

/** Exit codes of `npm run demo`. */
export const DemoExit = {
  ok: 0,
  /** Something expected did not arrive, or arrived wrong. */
  failed: 1,
  /** Bad or missing configuration (a secret). */
  config: 2,
  /** The platform is not running (or not ready). */
  platformDown: 3,
  interrupted: 130,
} as const;

export interface DemoIo {
  stdout: { write(text: string): unknown; isTTY?: boolean };
  logger: Logger;
  /** Aborted on Ctrl-C: the demo cleans up and returns {@link DemoExit.interrupted}. */
  signal?: AbortSignal;
}

export interface DemoOptions {
  /** Default: 8 random hex characters. */
  runId?: string;
  now?: () => number;
  templates?: Templates;
  /** How often the progress line is redrawn, ms (250). */
  pollIntervalMs?: number;
}

export const NOT_RUNNING_MESSAGE =
  'the platform is not running: start it with `npm start` in another terminal, wait for "ready", then run `npm run demo` again';

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });

function renderDeliveries(scenario: Scenario, answers: readonly IngressAnswer[]): string {
  return formatTable(
    ['step', 'provider', 'delivery', 'event id', 'ingress answer'],
    scenario.deliveries.map((d) => {
      const answer = answers.find((a) => a.step === d.step);
      return [
        d.step,
        d.provider,
        d.label,
        shortId(d.providerEventId),
        answer ? `${answer.httpStatus} ${answer.status}` : 'not posted',
      ];
    }),
  );
}

/** The demo endpoint's description (with its owner label `demo`, how a run finds the endpoint to reuse). */
export const DEMO_ENDPOINT_DESCRIPTION =
  'ampflow demo (kept for the console: npm run demo -- --cleanup removes it)';

/**
 * The demo endpoint: the one labelled owner `demo`, pointed at this run's sink and vehicles and enabled again
 * (an earlier run's receiver is gone, so its deliveries may have failed and disabled it), else a new one.
 * Extra `demo` endpoints (two runs that raced) are deleted, so runs never pile endpoints up.
 */
export async function ensureDemoEndpoint(
  admin: AdminClient,
  settings: Record<string, unknown>,
): Promise<{ id: string; secret: string; reused: boolean }> {
  const [kept, ...extra] = await admin.listEndpoints(DEMO_OWNER);
  for (const e of extra) await admin.deleteEndpoint(e.id);
  if (kept) return { ...(await admin.updateEndpoint(kept.id, settings)), reused: true };
  return { ...(await admin.createEndpoint({ ...settings, owner: DEMO_OWNER })), reused: false };
}

/** `npm run demo -- --cleanup`: deletes the demo endpoint(s) (owner `demo`) and says which. */
export async function cleanUpDemo(config: DemoConfig, io: DemoIo): Promise<number> {
  const admin = createAdminClient(config.DEMO_NOTIFIER_URL, config.NOTIFIER_ADMIN_TOKEN);
  const found = await admin.listEndpoints(DEMO_OWNER);
  for (const e of found) {
    await admin.deleteEndpoint(e.id);
    io.stdout.write(`deleted demo endpoint ${e.id} (${e.url})\n`);
  }
  if (found.length === 0) io.stdout.write(`no demo endpoint (owner ${DEMO_OWNER}) to delete\n`);
  return DemoExit.ok;
}

/**
 * Runs the demo against the platform at `config`'s URLs and resolves to the exit code. Touches no `process`:
 * `main.ts` passes the streams, the environment's configuration and Ctrl-C.
 */
export async function runDemo(config: DemoConfig, io: DemoIo, options: DemoOptions = {}): Promise<number> {
  const out = (text: string) => io.stdout.write(text);
  const now = options.now ?? Date.now;
  const urls: ServiceUrls = {
    ingress: config.DEMO_INGRESS_URL,
    normalizer: config.DEMO_NORMALIZER_URL,
    aggregator: config.DEMO_AGGREGATOR_URL,
    notifier: config.DEMO_NOTIFIER_URL,
  };
  const platform = await checkPlatform(urls);
  if (platform.down.length > 0 || platform.notReady.length > 0) {
    out(`${NOT_RUNNING_MESSAGE}\n`);
    for (const where of platform.down) out(`  - ${where}: no answer\n`);
    for (const where of platform.notReady) out(`  - ${where}: not ready\n`);
    return DemoExit.platformDown;
  }

  const runId = options.runId ?? randomBytes(4).toString('hex');
  const scenario = buildScenario(options.templates ?? loadTemplates(), { runId, now: now() });
  const { smartcar, telematica } = scenario.vehicles;
  out(`ampflow demo, run ${runId}: all four services are ready.\n\n${renderVehicles(scenario)}\n\n`);

  const kafka = createKafka({ brokers: config.KAFKA_BROKERS, clientId: 'ampflow-demo', logger: io.logger });
  const codec = createAvroCodec({
    client: createRegistryClient(config.SCHEMA_REGISTRY_URL),
    logger: io.logger,
  });
  const admin = createAdminClient(config.DEMO_NOTIFIER_URL, config.NOTIFIER_ADMIN_TOKEN);
  const sink = await startSink();
  const cleanups: Array<() => Promise<void>> = [() => sink.close()];
  const cleanUp = async () => {
    for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
  };
  try {
    const watcher = await startWatcher({
      kafka,
      codec,
      topicPrefix: config.KAFKA_TOPIC_PREFIX,
      groupId: `ampflow-demo-${runId}`,
      keys: new Set([smartcar.vehicleId, telematica.vehicleId, ...scenario.userIds]),
    });
    cleanups.push(() => watcher.stop());

    // Every customer event type (no `eventTypes`), only about this run's vehicles: other traffic on the
    // platform never reaches the sink, and the sink's counts are this run's. The endpoint stays after the demo
    // (owner `demo`), so the console shows it with its messages; the next run reuses it.
    const endpoint = await ensureDemoEndpoint(admin, {
      url: sink.url,
      description: DEMO_ENDPOINT_DESCRIPTION,
      vehicleIds: [smartcar.vehicleId, telematica.vehicleId],
      eventTypes: [],
      userIds: [],
      providers: [],
      throttleRate: null,
      enabled: true,
    });
    sink.setSecret(endpoint.secret);
    out(
      `demo endpoint ${endpoint.id} (owner ${DEMO_OWNER}, ${endpoint.reused ? 'reused' : 'created'}) → ${sink.url} (all customer event types, these two vehicles)\n`,
    );
    const answers: IngressAnswer[] = [];
    out(`posting ${scenario.deliveries.length} signed deliveries to ${urls.ingress} ...\n`);
    for (const delivery of scenario.deliveries) {
      if (io.signal?.aborted) break;
      const headers = signDelivery(
        delivery,
        {
          smartcarManagementToken: config.SMARTCAR_MANAGEMENT_TOKEN,
          telematicaWebhookSecret: config.TELEMATICA_WEBHOOK_SECRET,
        },
        new Date(now()),
      );
      answers.push(await postDelivery(urls.ingress, delivery, headers));
    }
    out(`${renderDeliveries(scenario, answers)}\n\n`);
    if (io.signal?.aborted) return DemoExit.interrupted;

    // The endpoint is reused across runs: a retry still due from an earlier run (or a console test event)
    // reaches this run's sink too, and is not this run's to count.
    const runVehicles = new Set([smartcar.vehicleId, telematica.vehicleId]);
    const observe = (): Progress =>
      assess(scenario, {
        answers,
        records: watcher.records,
        sessions: watcher.sessions,
        webhooks: sink.webhooks.filter((w) => runVehicles.has(webhookVehicle(w) ?? '')),
        unverified: sink.unverified(),
      });
    const wrongAnswers = observe().problems.filter((p) => p.startsWith('step '));
    if (wrongAnswers.length > 0) {
      out(
        `FAILED: the ingress did not answer as expected\n${wrongAnswers.map((p) => `  - ${p}`).join('\n')}\n`,
      );
      return DemoExit.failed;
    }

    const started = now();
    const pollMs = options.pollIntervalMs ?? 250;
    let progress = observe();
    let lastLine = 0;
    while (!progress.complete && now() - started < config.DEMO_TIMEOUT_MS && !io.signal?.aborted) {
      const line = `waiting: ${progressLine(progress, now() - started)}`;
      if (io.stdout.isTTY) out(`\r${line}\u001b[K`);
      else if (now() - lastLine >= 5_000) {
        out(`${line}\n`);
        lastLine = now();
      }
      await sleep(pollMs, io.signal);
      progress = observe();
    }
    if (progress.complete) {
      // A moment more, so a record or webhook that should not exist (a duplicate) is seen too.
      await sleep(1_000, io.signal);
      progress = observe();
    }
    const done = `${progress.complete ? 'done' : 'stopped'}: ${progressLine(progress, now() - started)}`;
    out(io.stdout.isTTY ? `\r${done}\u001b[K\n\n` : `${done}\n\n`);
    if (io.signal?.aborted) return DemoExit.interrupted;

    out(`canonical records (${watcher.records.length})\n${renderRecords(scenario, watcher.records)}\n\n`);
    out(`charging sessions (${watcher.sessions.length} changes)\n${renderSessions(watcher.sessions)}\n\n`);
    out(
      `customer webhooks verified by the sink (${sink.webhooks.length})\n${renderWebhooks(sink.webhooks)}\n\n`,
    );
    if (watcher.undecodable() > 0) out(`(${watcher.undecodable()} record(s) could not be decoded)\n`);
    out(`${renderVerdict(progress)}\n`);
    return progress.complete && progress.problems.length === 0 ? DemoExit.ok : DemoExit.failed;
  } finally {
    await cleanUp();
  }
}
