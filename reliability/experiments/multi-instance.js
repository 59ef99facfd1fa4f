'use strict';

/**
 * Every service as 2 and then 3 instances on the suite's own infrastructure, one instance of each SIGKILLed in
 * turn under load (with 2: not replaced; with 3: started again 2 s later), each run compared with a clean
 * single-instance run of the same webhooks (reliability/lib/multi-instance.js). `npm test` runs the same
 * through reliability/test/multi-instance.test.ts on the integration stack; this is the named command, with
 * twice the load under `--full`.
 */
const path = require('node:path');
const { randomBytes } = require('node:crypto');
const { row } = require('../lib/context');
const { runPipeline, compareRuns, checkClean, summarize, SERVICES } = require('../lib/multi-instance');
const { planReadings } = require('../lib/traffic');

async function multiInstance(ctx) {
  const vehicles = ctx.full ? 1200 : 600;
  const rate = 40;
  const runId = randomBytes(3).toString('hex');
  const logDir = path.join(ctx.logDir, 'multi-instance');
  const plan = planReadings({ vehicles, tag: `multi-${runId}`, smartcarEvery: 4 });
  const common = { infra: ctx.infra, plan, rate, runId, logDir, settleMs: ctx.settleMs };
  const clean = await runPipeline({ ...common, label: 'clean' });
  ctx.log(summarize(clean, compareRuns(clean, clean)));
  const problems = checkClean(clean, vehicles).map((p) => `clean: ${p}`);
  const runs = [];
  for (const [instances, restartAfterMs] of [
    [2, undefined],
    [3, 2_000],
  ]) {
    const run = await runPipeline({
      ...common,
      label: `x${instances}`,
      instances: Object.fromEntries(SERVICES.map((s) => [s, instances])),
      kills: SERVICES.map((service, i) => ({ service, atFraction: 0.25 + i * 0.15, restartAfterMs })),
    });
    const comparison = compareRuns(clean, run);
    ctx.log(summarize(run, comparison));
    problems.push(...comparison.problems.map((p) => `${run.label}: ${p}`));
    runs.push({ run, comparison });
  }
  const sum = (f) => runs.reduce((a, { run }) => a + f(run.accounting), 0);
  return row('multi-instance', {
    accounting: {
      tried: sum((a) => a.tried),
      acknowledged: sum((a) => a.acknowledged),
      stored: sum((a) => a.stored),
      lost: Math.max(...runs.map(({ run }) => run.accounting.lost)),
      duplicatedKafka: sum((a) => a.duplicatedKafka),
      duplicatedDelivered: sum((a) => a.duplicatedDelivered),
      stages: undefined,
    },
    unintended5xx: runs.reduce((a, { comparison }) => a + comparison.stages.acknowledged.unintended5xx, 0),
    details: Object.fromEntries(
      runs.map(({ run, comparison }) => [
        run.label,
        { kills: run.kills, stages: comparison.stages, timings: run.timings },
      ]),
    ),
    failure: problems.length > 0 ? problems.join('; ') : undefined,
  });
}

module.exports = { 'multi-instance': multiInstance };
