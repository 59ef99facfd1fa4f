import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * Every service as 2 and as 3 instances (built processes, `node services/<name>/dist/main.js`), under a steady
 * load of signed Telematica and Smartcar webhooks spread over the ingress instances' ports, with one instance of
 * each service SIGKILLed in turn mid-load; compared with a clean single-instance run of exactly the same
 * webhooks. On the integration stack's Kafka and registry (topics, groups and namespaces under a fresh prefix per
 * run) with a redis-server per run (reliability/lib/multi-instance.js). Only processes this test started are
 * killed.
 */

interface Kill {
  service: string;
  atFraction: number;
  restartAfterMs?: number;
}
interface Run {
  label: string;
  instances: Record<string, number>;
  kills: Array<{
    instance: string;
    atMs: number;
    workMetric: string;
    workBefore?: number;
    restartedAtMs?: number;
    readyAtMs?: number;
  }>;
  timings: Record<string, number>;
}
interface Comparison {
  stages: Record<string, Record<string, number>>;
  problems: string[];
}
interface MultiInstance {
  runPipeline(options: {
    infra: { kafkaBrokers: string; schemaRegistryUrl: string };
    plan: unknown[];
    instances?: Record<string, number>;
    kills?: Kill[];
    rate: number;
    label: string;
    runId: string;
    logDir: string;
    settleMs: number;
    cleanup?: boolean;
  }): Promise<Run>;
  compareRuns(clean: Run, run: Run): Comparison;
  checkClean(clean: Run, vehicles: number): string[];
  summarize(run: Run, comparison: Comparison): string;
}

const ROOT = join(__dirname, '..', '..');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const lib = require('../lib/multi-instance') as MultiInstance;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { planReadings } = require('../lib/traffic') as {
  planReadings(options: { vehicles: number; tag: string; smartcarEvery?: number }): unknown[];
};

/**
 * 30 s of load at 40 readings/s: 600 vehicles, a charging and a stopped reading each; every fourth vehicle is a
 * Smartcar one (its own raw topic), the others Telematica.
 */
const VEHICLES = 600;
const SMARTCAR_EVERY = 4;
const RATE = 40;
const SETTLE_MS = 120_000;
/** One instance of each service, in turn: the ingress first (readings then retry on the others), the notifier last. */
const KILLS = (restartAfterMs?: number): Kill[] =>
  ['ingress', 'normalizer', 'session-aggregator', 'notifier'].map((service, i) => ({
    service,
    atFraction: 0.25 + i * 0.15,
    restartAfterMs,
  }));

describe('every service as several instances, one of each SIGKILLed mid-run', () => {
  const runId = `${new Date()
    .toISOString()
    .replace(/[^0-9]/g, '')
    .slice(0, 14)}-${randomBytes(3).toString('hex')}`;
  const logDir = join(ROOT, 'reliability', 'results', 'logs', `multi-${runId}`);
  const infra = {
    kafkaBrokers: process.env.KAFKA_BROKERS ?? '',
    schemaRegistryUrl: process.env.SCHEMA_REGISTRY_URL ?? '',
  };
  const plan = planReadings({ vehicles: VEHICLES, tag: `multi-${runId}`, smartcarEvery: SMARTCAR_EVERY });
  let clean: Run;

  const run = (label: string, instances: number, kills: Kill[]) =>
    lib.runPipeline({
      infra,
      plan,
      instances: Object.fromEntries(
        ['ingress', 'normalizer', 'session-aggregator', 'notifier'].map((s) => [s, instances]),
      ),
      kills,
      rate: RATE,
      label,
      runId,
      logDir,
      settleMs: SETTLE_MS,
      // The shared broker keeps nothing of the run.
      cleanup: true,
    });

  beforeAll(async () => {
    mkdirSync(logDir, { recursive: true });
    clean = await run('clean', 1, []);
    process.stdout.write(`${lib.summarize(clean, lib.compareRuns(clean, clean))}\n`);
    process.stdout.write(`service logs: ${relative(ROOT, logDir)}\n`);
  }, 5 * 60_000);

  it('the clean single-instance run has every reading of both providers, a STARTED and an ENDED per vehicle and every webhook', () => {
    expect(lib.checkClean(clean, VEHICLES)).toEqual([]);
    expect(lib.compareRuns(clean, clean).stages.raw!.smartcar).toBe((VEHICLES / SMARTCAR_EVERY) * 2);
  });

  it.each([
    ['2 instances, the killed one not replaced', 2, undefined],
    ['3 instances, the killed one started again after 2 s', 3, 2_000],
  ])(
    '%s: every acknowledged webhook stored, canonical records complete, sessions and deliveries those of the clean run',
    async (_name, instances, restartAfterMs) => {
      const result = await run(`x${instances}`, instances, KILLS(restartAfterMs));
      const comparison = lib.compareRuns(clean, result);
      process.stdout.write(`${lib.summarize(result, comparison)}\n`);
      // Each victim was one of several instances and had done work of its own when it was killed.
      expect(result.kills.map((k) => ({ instance: k.instance, didWork: (k.workBefore ?? 0) > 0 }))).toEqual(
        ['ingress', 'normalizer', 'session-aggregator', 'notifier'].map((s) => ({
          instance: `${s}-${instances}`,
          didWork: true,
        })),
      );
      if (restartAfterMs !== undefined)
        expect(result.kills.filter((k) => k.readyAtMs === undefined).map((k) => k.instance)).toEqual([]);
      expect(comparison.problems).toEqual([]);
    },
    6 * 60_000,
  );
});

describe('compareRuns, on made-up runs', () => {
  const events = (ids: string[], acked = true) => ids.map((id) => ({ id, acked }));
  const base = () => ({
    label: 'x2',
    instances: {},
    kills: [],
    timings: {},
    complete: true,
    events: events(['a', 'b']),
    answers: { fiveXx: [] as Array<{ status: number }> },
    raw: new Map([
      ['a', 1],
      ['b', 1],
    ]),
    rawProvider: new Map([
      ['a', 'telematica'],
      ['b', 'smartcar'],
    ]),
    telemetry: new Map([
      ['telematica:a', 1],
      ['smartcar:b', 1],
    ]),
    sessions: new Map([
      ['s1:1', new Map([['00aa', 1]])],
      ['s1:2', new Map([['00bb', 1]])],
    ]),
    received: new Map([
      ['w1', 1],
      ['w2', 1],
    ]),
    badSignatures: 0,
    logCheck: { verdict: 'pass' },
  });

  it('finds nothing when a run equals the clean one, duplicates counted but allowed', () => {
    const run = base();
    run.raw.set('a', 2);
    run.sessions.get('s1:1')!.set('00aa', 2);
    run.received.set('w1', 3);
    const { stages, problems } = lib.compareRuns(base() as unknown as Run, run as unknown as Run);
    expect({ problems, raw: stages.raw!.duplicated, sessions: stages.sessions!.duplicated }).toEqual({
      problems: [],
      raw: 1,
      sessions: 1,
    });
    expect(stages.delivered!.duplicated).toBe(2);
  });

  it('reports a lost raw record, a missing canonical one, a second STARTED, a differing copy and a lost webhook', () => {
    const run = base();
    run.raw.delete('a');
    run.raw.set('c', 1);
    run.rawProvider.set('c', 'smartcar');
    run.sessions.set('s2:1', new Map([['00cc', 1]]));
    run.sessions.get('s1:2')!.set('00bd', 1);
    run.received.delete('w2');
    run.answers.fiveXx.push({ status: 500 });
    const { problems } = lib.compareRuns(base() as unknown as Run, run as unknown as Run);
    expect(problems.map((p) => p.replace(/ \(e\.g\. .*\)$/, ''))).toEqual([
      '1 answers 5xx other than 503',
      '1 acknowledged readings not on the raw topic',
      '1 raw records without a canonical record',
      '1 session changes the clean run does not have',
      '1 session changes with a copy unlike the clean run',
      '1 webhooks of the clean run not delivered',
    ]);
  });
});
