'use strict';
/* global fetch, AbortSignal */

/**
 * Ingress benchmark: the real ingress (verify signature, check schema, dedup in Redis, publish to Kafka with
 * acks=-1, answer 200) against a bare Express 5 server that only reads the body, under the same autocannon
 * load from this process, alternating bare/ingress for several rounds and reporting medians. Afterwards,
 * the records that landed on the raw topics are reconciled with the 2xx answers. See bench/README.md.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { setTimeout: sleep } = require('node:timers/promises');
const { Kafka, logLevel } = require('kafkajs');
const { rawTopic } = require('@ampflow/contracts');
const { findPidByName, readPidFile, startCpuSample } = require('./lib/cpu');
const { ensureBuild, ensureInfrastructure } = require('./lib/infra');
const { runLoad } = require('./lib/load');
const { quantileUpperBound, scrapeMetrics, sumOf } = require('./lib/prometheus');
const {
  freePort,
  isRunning,
  startNodeChild,
  stopChild,
  waitForHttpOk,
} = require('./lib/processes');
const { formatTable, median, round } = require('./lib/stats');
const { machineInfo } = require('./lib/kafka-bench');
const { buildSignedRequests, loadWebhookFixtures } = require('./lib/webhook-requests');

const ROOT = path.resolve(__dirname, '..');
const RESULTS_DIR = path.join(__dirname, 'results');
const PROFILES_DIR = path.join(RESULTS_DIR, 'profiles');
const INGRESS_MAIN = path.join(ROOT, 'services', 'ingress', 'dist', 'main.js');
const INGRESS_VARIANT = path.join(__dirname, 'targets', 'ingress-variant.js');
const BARE_SERVER = path.join(__dirname, 'targets', 'bare-express.js');

/** Bench-only credentials (nothing real): the ingress is started with them and requests are signed with them. */
const SECRETS = {
  smartcarManagementToken: 'bench-smartcar-management-token',
  telematicaWebhookSecret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
};
const RAW_TOPICS = [rawTopic('smartcar'), rawTopic('telematica')];
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
const STOP_GRACE_MS = 20_000;
const WATERMARK_SETTLE_TIMEOUT_MS = 15_000;
/** Environment of every ingress child: the bench's credentials, loopback only, warn-level logs. */
const INGRESS_ENV = {
  HTTP_HOST: '127.0.0.1',
  SMARTCAR_MANAGEMENT_TOKEN: SECRETS.smartcarManagementToken,
  TELEMATICA_WEBHOOK_SECRET: SECRETS.telematicaWebhookSecret,
  LOG_LEVEL: 'warn',
  // The same SET EX NX per event; an hour instead of 7 days so bench ids do not pile up in a shared Redis.
  DEDUP_TTL_SECONDS: '3600',
};

function log(message) {
  process.stdout.write(`[bench] ${message}\n`);
}

/**
 * What runs, in this order in every round. `publishes`: its records land on the raw topics, so they are
 * reconciled with its 2xx answers. The variants (BENCH_VARIANTS=1) are the same ingress code with Redis
 * and/or the Kafka produce call stubbed out (bench/targets/ingress-variant.js), to attribute its cost.
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
      script: INGRESS_VARIANT,
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

async function startTarget(definition, infra, options, startedAt, children) {
  const port = await freePort();
  const nodeArgs = [];
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
  const handle = startNodeChild(definition.name, definition.script, {
    cwd: ROOT,
    nodeArgs,
    env: {
      ...process.env,
      KAFKA_BROKERS: infra.kafkaBrokers,
      REDIS_URL: infra.redisUrl,
      HTTP_PORT: String(port),
      HTTP_HOST: '127.0.0.1',
      ...definition.env,
    },
  });
  children.push(handle);
  const baseUrl = `http://127.0.0.1:${port}`;
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

/** Sum of the high watermarks of the raw topics = records ever appended to them. */
async function rawTopicRecordCount(admin) {
  let total = 0;
  for (const topic of RAW_TOPICS) {
    for (const partition of await admin.fetchTopicOffsets(topic)) total += Number(partition.high);
  }
  return total;
}

/** Reads the watermark until two reads 500 ms apart agree (requests cut off at the end may still land). */
async function settledRecordCount(admin) {
  const deadline = Date.now() + WATERMARK_SETTLE_TIMEOUT_MS;
  let previous = await rawTopicRecordCount(admin);
  while (Date.now() < deadline) {
    await sleep(500);
    const current = await rawTopicRecordCount(admin);
    if (current === previous) return { count: current, settled: true };
    previous = current;
  }
  return { count: previous, settled: false };
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
  return {
    requestsPerSec: round(median(runs.map((r) => r.requestsPerSec)), 1),
    okPerSec: round(median(runs.map((r) => r.okPerSec)), 1),
    p50Ms: round(median(runs.map((r) => r.p50Ms)), 2),
    p99Ms: round(median(runs.map((r) => r.p99Ms)), 2),
    errors: runs.reduce((sum, r) => sum + r.errors, 0),
    non2xx: runs.reduce((sum, r) => sum + r.non2xx, 0),
    reusedRequests: runs.reduce((sum, r) => sum + r.reusedRequests, 0),
    targetCpuMicrosPerRequest: round(median(runs.map((r) => r.targetCpuMicrosPerRequest)), 1),
    cores: Object.fromEntries(
      Object.keys(runs[0].cpu.cores).map((name) => [
        name,
        round(median(runs.map((r) => r.cpu.cores[name])), 2),
      ]),
    ),
  };
}

function formatCores(cores) {
  return Object.entries(cores)
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => `${name} ${value}`)
    .join(', ');
}

function printReport(report) {
  const p = report.parameters;
  const bare = report.summary.bare;
  const rows = report.targets.map(({ key, name }) => {
    const s = report.summary[key];
    return [
      name,
      s.requestsPerSec,
      s.okPerSec,
      s.p50Ms,
      s.p99Ms,
      `${s.errors} / ${s.non2xx}`,
      key === 'bare' ? '1' : round(s.requestsPerSec / bare.requestsPerSec, 3),
      s.targetCpuMicrosPerRequest,
    ];
  });
  log('');
  log(
    `medians of ${p.rounds} round(s), ${p.connections} connections, ${p.durationS} s each after a ${p.warmupS} s ` +
      `warm-up; ${report.machine.cpuCount} CPUs, node ${report.machine.nodeVersion}`,
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
  ];
  process.stdout.write(`\n${formatTable(headers, rows)}\n\n`);
  log(`ratio ingress/bare (req/s): ${report.summary.ratio}`);
  log('per round:');
  for (const roundResult of report.rounds) {
    for (const { key, name } of report.targets) {
      const r = roundResult[key];
      log(
        `  round ${roundResult.round} ${name}: ${r.requestsPerSec} req/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, ` +
          `max ${r.maxMs} ms, 2xx ${r.ok2xx}, non-2xx ${r.non2xx}, errors ${r.errors}, unanswered at stop ` +
          `${r.unanswered}, pool ${r.requestsBuilt}/${r.poolSize}`,
      );
      log(
        `      CPU cores: ${formatCores(r.cpu.cores)}; target ${r.targetCpuMicrosPerRequest} µs CPU/request`,
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
  const v = report.verification;
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
  const g = report.goals;
  const met = (ok) => (ok ? 'met' : 'NOT met');
  log('');
  log(
    `goals (ingress): 2xx/s >= ${GOALS.minOkPerSec}: ${met(g.okPerSec)}; p99 < ${GOALS.maxP99Ms} ms: ` +
      `${met(g.p99)}; ingress/bare >= ${GOALS.minRatio}: ${met(g.ratio)}`,
  );
}

function writeResults(report) {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `ingress-${report.startedAt.replace(/[:.]/g, '-')}.json`);
  const text = `${JSON.stringify(report, null, 2)}\n`;
  fs.writeFileSync(file, text);
  fs.writeFileSync(path.join(RESULTS_DIR, 'ingress-latest.json'), text);
  return file;
}

async function stopAll(children) {
  const outcomes = await Promise.all(children.map((handle) => stopChild(handle, STOP_GRACE_MS)));
  children.forEach((handle, i) => {
    const o = outcomes[i];
    log(
      `stopped ${handle.name} (pid ${handle.pid}): ${o.code ?? o.signal}${o.forced ? ' after SIGKILL' : ''}; ` +
        `${handle.outputLines} output lines`,
    );
    if (handle.outputLines > 0)
      log(`  last output of ${handle.name}:\n${handle.output.split('\n').slice(-8).join('\n')}`);
  });
}

async function run(options) {
  const startedAt = new Date().toISOString();
  if (!options.skipBuild) ensureBuild(ROOT);
  if (!fs.existsSync(INGRESS_MAIN)) throw new Error(`${INGRESS_MAIN} is missing: build first (npx tsc -b)`);
  const infra = ensureInfrastructure(ROOT);
  log(`Kafka ${infra.kafkaBrokers}, Redis ${infra.redisUrl} (${infra.source})`);
  const fixtures = loadWebhookFixtures();
  log(
    `fixtures: smartcar ${fixtures.smartcar.map((f) => path.basename(f.name)).join(', ')}; ` +
      `telematica ${fixtures.telematica.map((f) => path.basename(f.name)).join(', ')}`,
  );

  const children = [];
  let admin;
  const onSignal = (signal) => {
    log(`${signal}: stopping the targets`);
    stopAll(children).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const targets = [];
    for (const definition of targetDefinitions(options)) {
      targets.push(await startTarget(definition, infra, options, startedAt, children));
    }
    for (const t of targets) log(`started ${t.name} (pid ${t.handle.pid}) on ${t.baseUrl}`);
    await Promise.all(targets.map((t) => waitForHttpOk(t.handle, `${t.baseUrl}/readyz`, READY_TIMEOUT_MS)));
    log('all targets ready; preflight: one signed request per fixture to each');
    for (const t of targets) await preflight(t, fixtures);

    admin = new Kafka({
      clientId: 'ampflow-bench',
      brokers: infra.kafkaBrokers.split(/[\s,]+/).filter(Boolean),
      logLevel: logLevel.NOTHING,
    }).admin();
    await admin.connect();
    const observedPids = {
      kafka:
        infra.source === 'environment'
          ? undefined
          : readPidFile(path.join(ROOT, '.ampflow', 'pids', 'kafka.pid')),
      redis: findPidByName('redis-server'),
    };

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
        const before = target.publishes ? (await settledRecordCount(admin)).count : undefined;
        const { warmup, measured } = await measure(
          target,
          fixtures,
          options,
          maxRateSeen || ASSUMED_MAX_RATE,
          observedPids,
        );
        maxRateSeen = Math.max(maxRateSeen, measured.requestsPerSec, warmup ? warmup.requestsPerSec : 0);
        roundResult[target.key] = measured;
        if (warmup) roundResult[`${target.key}Warmup`] = warmup;
        log(
          `  ${measured.requestsPerSec} req/s, p50 ${measured.p50Ms} ms, p99 ${measured.p99Ms} ms, ` +
            `non-2xx ${measured.non2xx}, errors ${measured.errors}; CPU cores: ${formatCores(measured.cpu.cores)}`,
        );
        if (target.publishes) {
          const after = await settledRecordCount(admin);
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
    summary.ratio = round(summary.ingress.requestsPerSec / summary.bare.requestsPerSec, 3);
    const ingressChecks = checks.filter((c) => c.target === 'ingress');
    const verification = {
      method:
        'sum of the high watermarks (kafkajs admin.fetchTopicOffsets) of the raw topics before and after each ' +
        "publishing target's round (warm-up + measured run), compared with the 2xx answers",
      topics: RAW_TOPICS,
      checks,
      recordsLanded: ingressChecks.reduce((s, c) => s + c.recordsLanded, 0),
      ok2xx: ingressChecks.reduce((s, c) => s + c.ok2xx, 0),
      verdict: checks.every((c) => c.verdict.startsWith('OK')) ? 'OK' : 'MISMATCH (see checks)',
    };
    const report = {
      benchmark: 'ingress',
      startedAt,
      finishedAt: new Date().toISOString(),
      parameters: {
        connections: options.connections,
        durationS: options.durationS,
        warmupS: options.warmupS,
        rounds: options.rounds,
        order: targets.map((t) => t.name).join(', ') + ' in every round',
        pipelining: 1,
        loadGenerator: 'autocannon (programmatic, in the bench process, over loopback)',
        requestMix:
          "alternating Smartcar / Telematica, cycling through each provider's non-verify fixtures; unique " +
          'eventId / svix-id per request; signed before each run',
        fixtures: {
          smartcar: fixtures.smartcar.map((f) => f.name),
          telematica: fixtures.telematica.map((f) => f.name),
        },
        ingressEnv: {
          LOG_LEVEL: INGRESS_ENV.LOG_LEVEL,
          DEDUP_TTL_SECONDS: INGRESS_ENV.DEDUP_TTL_SECONDS,
          HTTP_HOST: INGRESS_ENV.HTTP_HOST,
        },
        nodeArgs: Object.fromEntries(targets.map((t) => [t.key, t.nodeArgs])),
        infrastructure: infra,
        goals: GOALS,
      },
      machine: machineInfo({ autocannonVersion: require('autocannon/package.json').version }),
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
    printReport(report);
    const file = writeResults(report);
    log(`results: ${path.relative(ROOT, file)} (and bench/results/ingress-latest.json)`);
    return report;
  } finally {
    if (admin) await admin.disconnect().catch(() => {});
    await stopAll(children);
    if (options.profile) {
      log(
        `CPU profiles in ${path.relative(ROOT, PROFILES_DIR)}/ (summary: node bench/tools/profile-summary.js <file>)`,
      );
    }
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

module.exports = { run };
