'use strict';

/**
 * Reliability suite: `npm run reliability` runs the short set (inside `npm test`'s budget),
 * `npm run reliability -- <experiment> ...` the named ones, `npm run reliability -- --full` every experiment,
 * longer. Everything runs against a Kafka broker, an Apicurio Registry and a redis-server the suite starts for
 * itself, with the four services as built processes; faults never touch the shared stack. The run ends with one
 * table (and reliability/results/reliability-<time>.json): experiment | tried | acknowledged | stored /
 * delivered | lost | duplicated | unintended 5xx | slowest answer | recovery time | verdict. Exit 1 when any
 * verdict is not `pass`. See docs/reliability.md.
 */
const fs = require('node:fs');
const path = require('node:path');
const { randomBytes } = require('node:crypto');
const { spawnSync } = require('node:child_process');
const { log, startInfrastructure, startPlatform, suiteSecrets, ROOT } = require('./lib/platform');
const { startReceivers } = require('./lib/receivers');
const { startTap } = require('./lib/accounting');
const { adminClient, createContext, row } = require('./lib/context');
const { checkLogs } = require('./lib/log-check');

const EXPERIMENTS = {
  ...require('./experiments/broker'),
  ...require('./experiments/consumers'),
  ...require('./experiments/fuzz-ingress'),
  ...require('./experiments/overload'),
  ...require('./experiments/redis'),
  ...require('./experiments/registry'),
  ...require('./experiments/endpoints'),
  ...require('./experiments/fuzz-admin'),
  ...require('./experiments/soak'),
  ...require('./experiments/multi-instance'),
};

/** The short set, in the order it runs (the faults that leave the least behind last). */
const SHORT = [
  'fuzz-ingress',
  'fuzz-admin',
  'slowloris',
  'burst',
  'consumer-kill',
  'broker-stop',
  'broker-kill',
];

/** Every experiment, in the order `--full` runs them (the soak last, on what the faults left behind). */
const FULL = [
  'fuzz-ingress',
  'fuzz-admin',
  'endpoints',
  'slowloris',
  'burst',
  'consumer-kill',
  'redis-flush',
  'redis-pause',
  'registry-kill',
  'registry-at-start',
  'broker-stop',
  'broker-kill',
  'multi-instance',
  'soak',
];

const RESULTS_DIR = path.join(__dirname, 'results');

function usage() {
  return [
    'usage: npm run reliability -- [--full] [experiment ...]',
    '',
    '  (no experiment)  the short set: ' + SHORT.join(', '),
    '  --full           every experiment, longer runs, and the 10-minute soak: ' + FULL.join(', '),
    '  experiments:     ' + Object.keys(EXPERIMENTS).join(', '),
  ].join('\n');
}

function parse(argv) {
  const names = [];
  let full = false;
  let help = false;
  for (const arg of argv) {
    if (arg === '--full') full = true;
    else if (arg === '--help' || arg === '-h') help = true;
    else if (arg.startsWith('-')) throw new Error(`unknown option ${arg}\n${usage()}`);
    else names.push(arg);
  }
  const unknown = names.filter((n) => !Object.hasOwn(EXPERIMENTS, n));
  if (unknown.length > 0) throw new Error(`unknown experiment(s): ${unknown.join(', ')}\n${usage()}`);
  const selected = names.length > 0 ? [...new Set(names)] : full ? FULL : SHORT;
  return { full, help, selected };
}

function fmtMs(ms) {
  if (typeof ms !== 'number') return 'never';
  return ms >= 10_000 ? `${(ms / 1000).toFixed(0)} s` : `${ms} ms`;
}

function printTable(rows) {
  const headers = [
    'experiment',
    'tried',
    'acknowledged',
    'stored / delivered',
    'lost',
    'duplicated',
    'unintended 5xx',
    'slowest answer',
    'recovery time',
    'verdict',
  ];
  const cells = rows.map((r) =>
    [
      r.experiment,
      r.tried,
      r.acknowledged,
      r.stored,
      r.lost,
      r.redelivered ? `${r.duplicated} (+${r.redelivered} redelivered)` : r.duplicated,
      r.unintended5xx,
      r.slowestMs === undefined ? '-' : fmtMs(r.slowestMs),
      r.recoveryMs === null ? '-' : fmtMs(r.recoveryMs),
      r.verdict,
    ].map(String),
  );
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c) =>
    c.map((x, i) => (i === 0 || i === 9 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join(' | ');
  process.stdout.write(
    `\n${[line(headers), widths.map((w) => '-'.repeat(w)).join('-|-'), ...cells.map(line)].join('\n')}\n\n`,
  );
}

async function main() {
  const { full, help, selected } = parse(process.argv.slice(2));
  if (help) return void process.stdout.write(`${usage()}\n`);
  const startedAt = new Date().toISOString();
  const runId = `${startedAt.replace(/[^0-9]/g, '').slice(0, 14)}-${randomBytes(3).toString('hex')}`;
  const logDir = path.join(RESULTS_DIR, 'logs', runId);
  fs.mkdirSync(logDir, { recursive: true });
  log(
    `run ${runId} (${full ? 'full' : 'short'}): ${selected.join(', ')}; service logs in ${path.relative(ROOT, logDir)}`,
  );
  if (!process.env.RELIABILITY_SKIP_BUILD) {
    const build = spawnSync('npx', ['tsc', '-b'], { cwd: ROOT, stdio: 'inherit' });
    if (build.status !== 0) throw new Error('npx tsc -b failed');
  }
  const secrets = suiteSecrets();
  const prefix = `rel.${runId}.`;
  const rows = [];
  let infra;
  let platform;
  let receivers;
  let tap;
  try {
    infra = await startInfrastructure({ logDir });
    receivers = await startReceivers();
    platform = await startPlatform({ infra, logDir, secrets, prefix });
    const admin = adminClient(platform.notifier.baseUrl, secrets.notifierAdminToken);
    const created = await admin('POST', '/v1/endpoints', {
      url: receivers.url('ok', 'main'),
      eventTypes: ['vehicle.telemetry'],
    });
    if (created.status !== 201)
      throw new Error(`registering the receiver: ${created.status} ${created.text}`);
    receivers.setSecret('main', created.json.secret);
    tap = await startTap({
      brokers: infra.brokers,
      groupId: `${prefix}tap`,
      topics: {
        raw: `${prefix}ev.raw.telematica.v1`,
        telemetry: `${prefix}ev.vehicle-telemetry.v1`,
        sessions: `${prefix}ev.charging-sessions.v1`,
      },
    });
    const ctx = createContext({
      platform,
      secrets,
      infra,
      receivers,
      tap,
      full,
      logDir,
      endpoint: created.json,
    });
    ctx.endpointSecrets = [created.json.secret];
    for (const name of selected) {
      log(`=== ${name} ===`);
      const t0 = Date.now();
      let r;
      try {
        r = await EXPERIMENTS[name](ctx);
      } catch (err) {
        r = row(name, { failure: `error: ${err.message}` });
        r.details = { stack: err.stack };
      }
      r.seconds = Math.round((Date.now() - t0) / 1000);
      log(`${name}: ${r.verdict} (${r.seconds} s)`);
      rows.push(r);
    }
    await platform.stop();
    rows.push(checkLogs({ logDir, secrets, ctx }));
  } catch (err) {
    rows.push({ ...row('setup', { failure: `error: ${err.message}` }), details: { stack: err.stack } });
  } finally {
    await tap?.stop();
    await platform?.stop().catch(() => {});
    await receivers?.close();
    await infra?.stop();
  }
  printTable(rows);
  const report = {
    suite: 'reliability',
    mode: full ? 'full' : 'short',
    startedAt,
    finishedAt: new Date().toISOString(),
    runId,
    logDir: path.relative(ROOT, logDir),
    rows,
    pass: rows.every((r) => r.verdict === 'pass'),
  };
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `reliability-${startedAt.replace(/[:.]/g, '-')}.json`);
  const text = `${JSON.stringify(report, null, 2)}\n`;
  fs.writeFileSync(file, text);
  fs.writeFileSync(path.join(RESULTS_DIR, 'reliability-latest.json'), text);
  if (process.env.RELIABILITY_RESULT_FILE) fs.writeFileSync(process.env.RELIABILITY_RESULT_FILE, text);
  log(`results: ${path.relative(ROOT, file)} (and reliability/results/reliability-latest.json)`);
  return report.pass ? 0 : 1;
}

main().then(
  (code) => process.exit(code ?? 0),
  (err) => {
    process.stderr.write(`[reliability] failed: ${err && err.stack ? err.stack : err}\n`);
    process.exit(2);
  },
);
