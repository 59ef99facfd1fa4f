import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * Every service as 2 and as 3 instances (built processes, `node services/<name>/dist/main.js`), under a steady
 * load of signed Telematica webhooks spread over the ingress instances' ports, with one instance of each service
 * SIGKILLed in turn mid-load; compared with a clean single-instance run of exactly the same webhooks. On the
 * integration stack's Kafka and registry (topics, groups and namespaces under a fresh prefix per run) with a
 * redis-server per run (reliability/lib/multi-instance.js). Only processes this test started are killed.
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
  planReadings(options: { vehicles: number; tag: string }): unknown[];
};

/** 30 s of load at 40 readings/s: 600 vehicles, a charging and a stopped reading each. */
const VEHICLES = 600;
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
  const plan = planReadings({ vehicles: VEHICLES, tag: `multi-${runId}` });
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
    });

  beforeAll(async () => {
    mkdirSync(logDir, { recursive: true });
    clean = await run('clean', 1, []);
    process.stdout.write(`${lib.summarize(clean, lib.compareRuns(clean, clean))}\n`);
    process.stdout.write(`service logs: ${relative(ROOT, logDir)}\n`);
  }, 5 * 60_000);

  it('the clean single-instance run has every reading, a STARTED and an ENDED per vehicle and every webhook', () => {
    expect(lib.checkClean(clean, VEHICLES)).toEqual([]);
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
