'use strict';
/* global fetch, AbortSignal */

/**
 * Ingress benchmark: the real ingress (verify signature, check schema, dedup in Redis, publish to Kafka with
 * acks=-1, answer 200) against a bare Express 5 server that only reads the body, under the same autocannon
 * load from this process, alternating bare/ingress for several rounds and reporting medians. Afterwards,
 * the records that landed on the raw topics are reconciled with the 2xx answers. The ingress publishes to the
 * run's own raw topics (`bench.<runId>.ev.raw.*.v1`, via KAFKA_TOPIC_PREFIX), deleted at the end; the
 * platform's topics are never touched. See bench/README.md.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { processMemoryMiB, startCpuSample } = require('./lib/cpu');
const { prepare, stackPids } = require('./lib/infra');
const kafka = require('./lib/kafka');
const { runLoad } = require('./lib/load');
const { quantileUpperBound, scrapeMetrics, sumOf } = require('./lib/prometheus');
const { isRunning, startTarget, waitForHttpOk, withChildren } = require('./lib/processes');
const report = require('./lib/report');
const { medianOf, ratio, round } = require('./lib/stats');
const { runPrefix, runTopics } = require('./lib/topics');
const { BENCH_SECRETS, buildSignedRequests, loadWebhookFixtures } = require('./lib/webhook-requests');

const { ROOT, log } = report;
const PROFILES_DIR = path.join(__dirname, 'results', 'profiles');
const INGRESS_MAIN = path.join(ROOT, 'services', 'ingress', 'dist', 'main.js');
const IO_STUBS = path.join(__dirname, 'tools', 'ingress-io-stubs.js');
const BARE_SERVER = path.join(__dirname, 'targets', 'bare-express.js');

const SECRETS = BENCH_SECRETS;
/** Partitions of the run's raw topics (the ingress's RAW_TOPIC_PARTITIONS default). */
const RAW_TOPIC_PARTITIONS = 6;
/** Goals from the issue, checked on the real ingress. */
const GOALS = { minOkPerSec: 3_000, maxP99Ms: 50, minRatio: 0.4 };
/**
 * Pool sizing. A request id used twice would hit the ingress's duplicate path, so every pool must outlast
 * its run. The bare server is the upper bound for the same load generator, so pools are sized from the
 * fastest rate seen so far (bare's; assumed before the first run) times a margin. Every target gets pools
 * sized the same way, so the load generator carries the same memory either way. Reuse is still counted.
 */
const ASSUMED_MAX_RATE = 12_000;
const POOL_MARGIN = 1.25;
const POOL_CEILING = 1_000_000;
const READY_TIMEOUT_MS = 60_000;
/** Environment of every ingress child: the bench's credentials, loopback only, warn-level logs. */
const INGRESS_ENV = {
  HTTP_HOST: '127.0.0.1',
  SMARTCAR_MANAGEMENT_TOKEN: SECRETS.smartcarManagementToken,
  TELEMATICA_WEBHOOK_SECRET: SECRETS.telematicaWebhookSecret,
  LOG_LEVEL: 'warn',
  // The same SET EX NX per event; an hour instead of 7 days so bench ids do not pile up in a shared Redis.
  DEDUP_TTL_SECONDS: '3600',
};

/**
 * What runs, in this order in every round. `publishes`: its records land on the raw topics, so they are
 * reconciled with its 2xx answers. The variants (BENCH_VARIANTS=1) are the same main.js with Redis and/or
 * the Kafka produce call stubbed out by a preloaded module (tools/ingress-io-stubs.js), to attribute its cost.
 */
function targetDefinitions(options) {
  const definitions = [
    { key: 'bare', name: 'bare-express', script: BARE_SERVER, env: {} },
    {
      key: 'ingress',
      name: 'ingress',
      script: INGRESS_MAIN,
      env: INGRESS_ENV,
      isIngress: true,
      publishes: true,
    },
  ];
  if (options.variants) {
    const variant = (key, name, stubs, publishes) => ({
      key,
      name,
      script: INGRESS_MAIN,
      preload: IO_STUBS,
      env: { ...INGRESS_ENV, ...stubs },
      isIngress: true,
      publishes,
    });
    definitions.push(
      variant('ingressNoRedis', 'ingress, Redis stubbed', { BENCH_STUB_REDIS: '1' }, true),
      variant('ingressNoKafka', 'ingress, Kafka produce stubbed', { BENCH_STUB_KAFKA: '1' }, false),
      variant(
        'ingressNoIo',
        'ingress, both stubbed',
        { BENCH_STUB_REDIS: '1', BENCH_STUB_KAFKA: '1' },
        false,
      ),
    );
  }
  return definitions;
}

async function startBenchTarget(definition, infra, options, startedAt, topicPrefix, children) {
  const nodeArgs = definition.preload ? ['--require', definition.preload] : [];
  if (definition.isIngress) nodeArgs.push(...options.ingressNodeArgs.split(/\s+/).filter(Boolean));
  if (options.profile) {
    fs.mkdirSync(PROFILES_DIR, { recursive: true });
    const stamp = startedAt.replace(/[:.]/g, '-');
    nodeArgs.push(
      '--cpu-prof',
      `--cpu-prof-dir=${PROFILES_DIR}`,
      `--cpu-prof-name=${definition.key}-${stamp}.cpuprofile`,
    );
  }
  const { handle, baseUrl } = await startTarget(definition.name, definition.script, {
    env: {
      KAFKA_BROKERS: infra.kafkaBrokers,
      REDIS_URL: infra.redisUrl,
      KAFKA_TOPIC_PREFIX: topicPrefix,
      RAW_TOPIC_PARTITIONS: String(RAW_TOPIC_PARTITIONS),
      ...definition.env,
    },
    nodeArgs,
    children,
  });
  return {
    ...definition,
    handle,
    baseUrl,
    nodeArgs,
    metricsUrl: definition.isIngress ? `${baseUrl}/metrics` : undefined,
  };
}

function poolSize(maxRatePerSec, seconds, connections) {
  return Math.min(POOL_CEILING, Math.ceil(maxRatePerSec * seconds * POOL_MARGIN) + 2 * connections);
}

/** One signed request per fixture through a target, expecting 200 each: the load is only meaningful if so. */
async function preflight(target, fixtures) {
  const count = 2 * Math.max(fixtures.smartcar.length, fixtures.telematica.length);
  const { requests } = buildSignedRequests(count, fixtures, SECRETS);
  const failures = [];
  for (const request of requests) {
    const response = await fetch(`${target.baseUrl}${request.path}`, {
      method: 'POST',
      headers: request.headers,
      body: request.body,
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    if (response.status !== 200) failures.push(`${request.path} -> ${response.status} ${text.slice(0, 200)}`);
  }
  if (failures.length > 0) throw new Error(`${target.name} refused fixtures:\n  ${failures.join('\n  ')}`);
}

/** What the ingress's own /metrics say about one run (deltas between the scrapes around it). */
function ingressMetricsDelta(before, after, wallSeconds) {
  const delta = (name, filter) => sumOf(after, name, filter) - sumOf(before, name, filter);
  const ms = (seconds) => (seconds === undefined ? undefined : round(seconds * 1000, 2));
  const ok = { result: 'ok' };
  const publishCount = delta('ingress_publish_duration_seconds_count', ok);
  const publishQuantile = (q) =>
    ms(quantileUpperBound(before, after, 'ingress_publish_duration_seconds', q, ok));
  return {
    requestsByOutcome: Object.fromEntries(
      ['accepted', 'duplicate', 'unauthorized', 'invalid', 'unavailable', 'error'].map((outcome) => [
        outcome,
        delta('ingress_requests_total', { outcome }),
      ]),
    ),
    publishOk: publishCount,
    publishFailed: delta('ingress_publish_duration_seconds_count', { result: 'failed' }),
    publishMeanMs: publishCount
      ? ms(delta('ingress_publish_duration_seconds_sum', ok) / publishCount)
      : undefined,
    publishP50UpperBoundMs: publishQuantile(0.5),
    publishP99UpperBoundMs: publishQuantile(0.99),
    // prom-client resets its event-loop delay histogram at every scrape: these cover this run only.
    eventLoopDelayP50Ms: ms(sumOf(after, 'nodejs_eventloop_lag_p50_seconds')),
    eventLoopDelayP99Ms: ms(sumOf(after, 'nodejs_eventloop_lag_p99_seconds')),
    eventLoopDelayMaxMs: ms(sumOf(after, 'nodejs_eventloop_lag_max_seconds')),
    gcShareOfWall: round(delta('nodejs_gc_duration_seconds_sum') / wallSeconds, 3),
    heapUsedMiB: round(sumOf(after, 'nodejs_heap_size_used_bytes') / 2 ** 20, 1),
  };
}

/**
 * Warm-up, then the measured run, each with a pool signed right before it (Svix timestamps must be fresh).
 * `maxRate` sizes the pools (see POOL_MARGIN). CPU use and the ingress's /metrics cover the measured run.
 */
async function measure(target, fixtures, options, maxRate, observedPids) {
  let warmup;
  if (options.warmupS > 0) {
    const pool = buildSignedRequests(
      poolSize(maxRate, options.warmupS, options.connections),
      fixtures,
      SECRETS,
    );
    warmup = await runLoad({
      title: `${target.name} warm-up`,
      baseUrl: target.baseUrl,
      connections: options.connections,
      durationS: options.warmupS,
      requests: pool.requests,
    });
  }
  const signStarted = Date.now();
  const pool = buildSignedRequests(
    poolSize(maxRate, options.durationS, options.connections),
    fixtures,
    SECRETS,
  );
  const poolSignMs = Date.now() - signStarted;
  const loadAverage1mBefore = round(os.loadavg()[0], 2);
  const metricsBefore = target.metricsUrl ? await scrapeMetrics(target.metricsUrl) : undefined;
  const cpuSample = startCpuSample({
    target: target.handle.pid,
    loadGenerator: process.pid,
    ...observedPids,
  });
  const measured = await runLoad({
    title: target.name,
    baseUrl: target.baseUrl,
    connections: options.connections,
    durationS: options.durationS,
    requests: pool.requests,
  });
  measured.cpu = cpuSample.stop();
  // VmHWM: the target's peak resident memory since it started (it serves every round).
  measured.targetPeakRssMiB = processMemoryMiB(target.handle.pid)?.hwm;
  measured.poolSignMs = poolSignMs;
  measured.loadAverage1mBefore = loadAverage1mBefore;
  const targetCores = measured.cpu.cores.target;
  measured.targetCpuMicrosPerRequest =
    targetCores === undefined || measured.completed === 0
      ? undefined
      : round(((targetCores * measured.cpu.wallSeconds) / measured.completed) * 1e6, 1);
  if (metricsBefore) {
    const metricsAfter = await scrapeMetrics(target.metricsUrl);
    measured.ingressMetrics = ingressMetricsDelta(metricsBefore, metricsAfter, measured.cpu.wallSeconds);
  }
  return { warmup, measured };
}

/**
 * Kafka records vs 2xx answers for one target's round (warm-up + measured run). Every 2xx must be on Kafka
 * (fewer records is data loss). More records than 2xx are possible only for requests cut off when the run
 * ended or answered 5xx while their publish was under way; anything beyond that is a duplicate.
 */
function reconcile(target, roundNumber, before, after, runs) {
  const sum = (pick) => runs.reduce((s, r) => s + pick(r), 0);
  const ok2xx = sum((r) => r.ok2xx);
  const unanswered = sum((r) => r.unanswered);
  const fiveXx = sum((r) =>
    Object.entries(r.statusCodes).reduce((t, [code, n]) => t + (code.startsWith('5') ? n : 0), 0),
  );
  const reusedRequests = sum((r) => r.reusedRequests);
  const recordsLanded = after.count - before;
  const difference = recordsLanded - ok2xx;
  let verdict;
  if (difference < 0) verdict = `MISMATCH: ${-difference} answered 2xx but not on Kafka`;
  else if (difference > unanswered + fiveXx) {
    verdict = `MISMATCH: ${difference - unanswered - fiveXx} more records than requests`;
  } else if (difference === 0) verdict = 'OK (exact)';
  else verdict = `OK (the ${difference} extra are requests cut off at the end of a run, published anyway)`;
  if (reusedRequests > 0) {
    verdict = `INVALID: ${reusedRequests} requests reused an id (pool too small). ${verdict}`;
  }
  return {
    target: target.name,
    round: roundNumber,
    recordsBefore: before,
    recordsAfter: after.count,
    settled: after.settled,
    recordsLanded,
    ok2xx,
    difference,
    unanswered,
    fiveXx,
    reusedRequests,
    verdict,
  };
}

function summarize(runs) {
  const total = (pick) => runs.reduce((sum, r) => sum + pick(r), 0);
  return {
    requestsPerSec: medianOf(runs, (r) => r.requestsPerSec, 1),
    okPerSec: medianOf(runs, (r) => r.okPerSec, 1),
    p50Ms: medianOf(runs, (r) => r.p50Ms),
    p99Ms: medianOf(runs, (r) => r.p99Ms),
    errors: total((r) => r.errors),
    non2xx: total((r) => r.non2xx),
    reusedRequests: total((r) => r.reusedRequests),
    targetCpuMicrosPerRequest: medianOf(runs, (r) => r.targetCpuMicrosPerRequest, 1),
    targetPeakRssMiB: Math.max(...runs.map((r) => r.targetPeakRssMiB ?? NaN)),
    cores: Object.fromEntries(
      Object.keys(runs[0].cpu.cores).map((name) => [name, medianOf(runs, (r) => r.cpu.cores[name])]),
    ),
  };
}

function printReport(result) {
  const p = result.parameters;
  const bare = result.summary.bare;
  const rows = result.targets.map(({ key, name }) => {
    const s = result.summary[key];
    return [
      name,
      s.requestsPerSec,
      s.okPerSec,
      s.p50Ms,
      s.p99Ms,
      `${s.errors} / ${s.non2xx}`,
      key === 'bare' ? '1' : ratio(s.requestsPerSec, bare.requestsPerSec),
      s.targetCpuMicrosPerRequest,
      s.targetPeakRssMiB,
    ];
  });
  log('');
  log(
    `medians of ${p.rounds} round(s), ${p.connections} connections, ${p.durationS} s each after a ${p.warmupS} s ` +
      `warm-up; ${result.machine.cpuCount} CPUs, node ${result.machine.nodeVersion}`,
  );
  const headers = [
    'target',
    'req/s',
    '2xx/s',
    'p50 ms',
    'p99 ms',
    'errors / non-2xx',
    'vs bare',
    'CPU µs/req',
    'peak RSS MiB',
  ];
  report.printTable(headers, rows);
  log('peak RSS: VmHWM of the target process after its last measured run');
  log(`ratio ingress/bare (req/s): ${result.summary.ratio}`);
  log('per round:');
  for (const roundResult of result.rounds) {
    for (const { key, name } of result.targets) {
      const r = roundResult[key];
      log(
        `  round ${roundResult.round} ${name}: ${r.requestsPerSec} req/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, ` +
          `max ${r.maxMs} ms, 2xx ${r.ok2xx}, non-2xx ${r.non2xx}, errors ${r.errors}, unanswered at stop ` +
          `${r.unanswered}, pool ${r.requestsBuilt}/${r.poolSize}`,
      );
      log(
        `      CPU cores: ${report.formatCores(r.cpu.cores)}; target ${r.targetCpuMicrosPerRequest} µs CPU/request`,
      );
      const m = r.ingressMetrics;
      if (m) {
        log(
          `      /metrics: accepted ${m.requestsByOutcome.accepted}, duplicate ${m.requestsByOutcome.duplicate}; ` +
            `publish->ack mean ${m.publishMeanMs} ms (p50 <= ${m.publishP50UpperBoundMs}, p99 <= ` +
            `${m.publishP99UpperBoundMs}); event-loop delay p99 ${m.eventLoopDelayP99Ms} ms, max ` +
            `${m.eventLoopDelayMaxMs} ms; GC ${round(m.gcShareOfWall * 100, 1)} % of wall time`,
        );
      }
    }
  }
  const v = result.verification;
  log('');
  log('verification: records on the raw topics (high watermarks before/after) vs 2xx answers');
  for (const c of v.checks) {
    log(
      `  round ${c.round} ${c.target}: records landed ${c.recordsLanded}, 2xx answered ${c.ok2xx}, difference ` +
        `${c.difference} (cut off at stop ${c.unanswered}, 5xx ${c.fiveXx}): ${c.verdict}` +
        `${c.settled ? '' : ' (watermark still moving)'}`,
    );
  }
  log(`  ingress total: records landed ${v.recordsLanded}, 2xx answered ${v.ok2xx}: ${v.verdict}`);
  const g = result.goals;
  const met = report.met;
  log('');
  log(
    `goals (ingress): 2xx/s >= ${GOALS.minOkPerSec}: ${met(g.okPerSec)}; p99 < ${GOALS.maxP99Ms} ms: ` +
      `${met(g.p99)}; ingress/bare >= ${GOALS.minRatio}: ${met(g.ratio)}`,
  );
}

async function run(options) {
  const startedAt = new Date().toISOString();
  const infra = prepare(options);
  if (!fs.existsSync(INGRESS_MAIN)) throw new Error(`${INGRESS_MAIN} is missing: build first (npx tsc -b)`);
  const fixtures = loadWebhookFixtures();
  log(
    `fixtures: smartcar ${fixtures.smartcar.map((f) => path.basename(f.name)).join(', ')}; ` +
      `telematica ${fixtures.telematica.map((f) => path.basename(f.name)).join(', ')}`,
  );
  const topics = runTopics(runPrefix(report.runIdOf(startedAt)));
  const rawTopics = topics.raw;
  const admin = await kafka.connectAdmin(infra.brokers);
  try {
    // The run's own raw topics, created before the ingress starts (it would create them the same way).
    log(`run topics: ${topics.prefix}* (KAFKA_TOPIC_PREFIX of every ingress it starts)`);
    await kafka.createTopics(admin, rawTopics, RAW_TOPIC_PARTITIONS);
    return await withChildren(async (children) => {
      const targets = [];
      for (const definition of targetDefinitions(options)) {
        targets.push(await startBenchTarget(definition, infra, options, startedAt, topics.prefix, children));
      }
      await Promise.all(targets.map((t) => waitForHttpOk(t.handle, `${t.baseUrl}/readyz`, READY_TIMEOUT_MS)));
      log('all targets ready; preflight: one signed request per fixture to each');
      for (const t of targets) await preflight(t, fixtures);
      const pids = stackPids(infra);

      const rounds = [];
      const checks = [];
      let maxRateSeen = 0;
      for (let roundNumber = 1; roundNumber <= options.rounds; roundNumber++) {
        const roundResult = { round: roundNumber };
        for (const target of targets) {
          if (!isRunning(target.handle)) throw new Error(`${target.name} is no longer running`);
          log(
            `round ${roundNumber}/${options.rounds}: ${target.name} (${options.warmupS} s warm-up + ${options.durationS} s)`,
          );
          const before = target.publishes
            ? (await kafka.settledRecordCount(admin, rawTopics)).count
            : undefined;
          const { warmup, measured } = await measure(
            target,
            fixtures,
            options,
            maxRateSeen || ASSUMED_MAX_RATE,
            pids,
          );
          maxRateSeen = Math.max(maxRateSeen, measured.requestsPerSec, warmup ? warmup.requestsPerSec : 0);
          roundResult[target.key] = measured;
          if (warmup) roundResult[`${target.key}Warmup`] = warmup;
          log(
            `  ${measured.requestsPerSec} req/s, p50 ${measured.p50Ms} ms, p99 ${measured.p99Ms} ms, ` +
              `non-2xx ${measured.non2xx}, errors ${measured.errors}; CPU cores: ${report.formatCores(measured.cpu.cores)}`,
          );
          if (target.publishes) {
            const after = await kafka.settledRecordCount(admin, rawTopics);
            const check = reconcile(
              target,
              roundNumber,
              before,
              after,
              warmup ? [warmup, measured] : [measured],
            );
            checks.push(check);
            log(`  Kafka: ${check.recordsLanded} records landed for ${check.ok2xx} 2xx: ${check.verdict}`);
          }
        }
        rounds.push(roundResult);
      }

      const summary = Object.fromEntries(targets.map((t) => [t.key, summarize(rounds.map((r) => r[t.key]))]));
      summary.ratio = ratio(summary.ingress.requestsPerSec, summary.bare.requestsPerSec);
      const ingressChecks = checks.filter((c) => c.target === 'ingress');
      const verification = {
        topics: rawTopics,
        checks,
        recordsLanded: ingressChecks.reduce((s, c) => s + c.recordsLanded, 0),
        ok2xx: ingressChecks.reduce((s, c) => s + c.ok2xx, 0),
        verdict: checks.every((c) => c.verdict.startsWith('OK')) ? 'OK' : 'MISMATCH (see checks)',
      };
      const result = {
        benchmark: 'ingress',
        startedAt,
        finishedAt: new Date().toISOString(),
        parameters: {
          connections: options.connections,
          durationS: options.durationS,
          warmupS: options.warmupS,
          rounds: options.rounds,
          quick: options.quick,
          topicPrefix: topics.prefix,
          rawTopics,
          order: targets.map((t) => t.name).join(', ') + ' in every round',
          method: 'bench/README.md (ingress) at machine.gitCommit',
          fixtures: {
            smartcar: fixtures.smartcar.map((f) => f.name),
            telematica: fixtures.telematica.map((f) => f.name),
          },
          ingressEnv: {
            ...INGRESS_ENV,
            SMARTCAR_MANAGEMENT_TOKEN: undefined,
            TELEMATICA_WEBHOOK_SECRET: undefined,
          },
          nodeArgs: Object.fromEntries(targets.map((t) => [t.key, t.nodeArgs])),
          infrastructure: infra,
          goals: GOALS,
        },
        machine: report.machineInfo({ autocannonVersion: require('autocannon/package.json').version }),
        targets: targets.map((t) => ({ key: t.key, name: t.name, script: path.relative(ROOT, t.script) })),
        summary,
        goals: {
          okPerSec: summary.ingress.okPerSec >= GOALS.minOkPerSec,
          p99: summary.ingress.p99Ms < GOALS.maxP99Ms,
          ratio: summary.ratio >= GOALS.minRatio,
        },
        verification,
        rounds,
      };
      printReport(result);
      report.writeResults('ingress', result);
      return result;
    });
  } finally {
    await kafka.deleteRunResources(admin, topics.prefix);
    await admin.disconnect().catch(() => {});
    if (options.profile) {
      log(
        `CPU profiles in ${path.relative(ROOT, PROFILES_DIR)}/ (summary: node bench/tools/profile-summary.js <file>)`,
      );
    }
  }
}

module.exports = { run };
