'use strict';

/**
 * Benchmark options: `--name=value` flags (when run as `node bench/run.js ingress --rounds=1`) or BENCH_*
 * environment variables (the reliable way through `npm run bench`, since npm keeps unknown flags for itself).
 * Every numeric option is bounded, so a typo cannot start an hour-long or unbounded run. `quick` swaps the
 * defaults for the `quick` values (options given explicitly still win): a run of seconds that checks every
 * benchmark works end to end, with figures that mean nothing.
 */
const OPTION_SPECS = {
  quick: {
    env: 'BENCH_QUICK',
    default: false,
    flag: true,
    help: 'smoke run: every bench briefly, end to end (figures mean nothing)',
  },
  connections: {
    env: 'BENCH_CONNECTIONS',
    default: 50,
    quick: 10,
    min: 1,
    max: 1000,
    help: 'concurrent connections',
  },
  durationS: {
    env: 'BENCH_DURATION_S',
    default: 15,
    quick: 2,
    min: 1,
    max: 300,
    help: 'measured seconds per run',
  },
  warmupS: {
    env: 'BENCH_WARMUP_S',
    default: 3,
    quick: 1,
    min: 0,
    max: 60,
    help: 'warm-up seconds before each run',
  },
  rounds: {
    env: 'BENCH_ROUNDS',
    default: 3,
    quick: 1,
    min: 1,
    max: 20,
    help: 'rounds (each runs every target once, same order)',
  },
  profile: {
    env: 'BENCH_PROFILE',
    default: false,
    flag: true,
    help: 'run every target with --cpu-prof (bench/results/profiles/)',
  },
  skipBuild: { env: 'BENCH_SKIP_BUILD', default: false, flag: true, help: 'do not run `npx tsc -b` first' },
  variants: {
    env: 'BENCH_VARIANTS',
    default: false,
    flag: true,
    help: 'also run the ingress with Redis and/or Kafka stubbed (attribution)',
  },
  normalizerRecords: {
    env: 'BENCH_NORMALIZER_RECORDS',
    default: 100_000,
    quick: 2_000,
    min: 1_000,
    max: 2_000_000,
    integer: true,
    help: 'normalizer: raw records pre-filled and consumed per run',
  },
  aggregatorVehicles: {
    env: 'BENCH_AGGREGATOR_VEHICLES',
    default: 10_000,
    quick: 100,
    min: 10,
    max: 200_000,
    integer: true,
    help: 'aggregator: vehicles (20 readings each)',
  },
  notifierRecords: {
    env: 'BENCH_NOTIFIER_RECORDS',
    default: 20_000,
    quick: 500,
    min: 100,
    max: 1_000_000,
    integer: true,
    help: 'notifier: telemetry records pre-filled (x 10 endpoints = deliveries)',
  },
  notifierLatencyRate: {
    env: 'BENCH_NOTIFIER_LATENCY_RATE',
    default: 200,
    quick: 100,
    min: 1,
    max: 10_000,
    integer: true,
    help: 'notifier: records/s produced during the latency phase (x 10 deliveries)',
  },
  notifierLatencyS: {
    env: 'BENCH_NOTIFIER_LATENCY_S',
    default: 10,
    quick: 3,
    min: 1,
    max: 300,
    help: 'notifier: seconds of the latency phase',
  },
  notifierMaxQueue: {
    env: 'BENCH_NOTIFIER_MAX_QUEUE',
    default: 0,
    min: 0,
    max: 10_000_000,
    integer: true,
    help: 'notifier: NOTIFIER_MAX_QUEUE_PER_ENDPOINT of the measured run (0: the default)',
  },
  notifierNodeArgs: {
    env: 'BENCH_NOTIFIER_NODE_ARGS',
    default: '',
    text: true,
    help: 'notifier: extra node flags of the measured run, e.g. "--prof" (a stuck process never writes --cpu-prof)',
  },
  e2eRates: {
    env: 'BENCH_E2E_RATES',
    default: '50,250,500,1000,1500',
    quick: '50,250',
    text: true,
    help: 'e2e: signed webhooks/s into the ingress, one measured run per rate (BENCH_PROFILE alone: 500)',
  },
  e2eKeepUpRate: {
    env: 'BENCH_E2E_KEEPUP_RATE',
    default: 2000,
    quick: 0,
    min: 0,
    max: 5_000,
    integer: true,
    help: 'e2e: one more rate run only if the highest one kept up (all accounted, p99 <= 500 ms); 0: never',
  },
  e2eIdleS: {
    env: 'BENCH_E2E_IDLE_S',
    default: 60,
    quick: 3,
    min: 0,
    max: 600,
    help: 'e2e: seconds of the idle row (platform up, no load); 0: no idle row',
  },
  e2eDurationS: {
    env: 'BENCH_E2E_DURATION_S',
    default: 60,
    quick: 5,
    min: 1,
    max: 600,
    help: 'e2e: seconds of load',
  },
  floorRates: {
    env: 'BENCH_FLOOR_RATES',
    default: '50,500',
    quick: '50',
    text: true,
    help: 'floor: webhooks/s through the four bare hops, one measured run per rate and client',
  },
  floorDurationS: {
    env: 'BENCH_FLOOR_DURATION_S',
    default: 40,
    quick: 3,
    min: 1,
    max: 600,
    help: 'floor: measured seconds per rate (after 10 s of warm-up; quick: 2 s)',
  },
  dlqRecords: {
    env: 'BENCH_DLQ_RECORDS',
    default: 100_000,
    quick: 2_000,
    min: 100,
    max: 2_000_000,
    integer: true,
    help: "dlq-retry: dead letters pre-filled on the run's deliveries DLQ",
  },
  dlqScanCalls: {
    env: 'BENCH_DLQ_SCAN_CALLS',
    default: 5,
    quick: 2,
    min: 1,
    max: 50,
    integer: true,
    help: 'dlq-retry: lookups by the old scan from offset 0 (each reads the whole DLQ)',
  },
  dlqIndexCalls: {
    env: 'BENCH_DLQ_INDEX_CALLS',
    default: 25,
    quick: 5,
    min: 1,
    max: 1_000,
    integer: true,
    help: 'dlq-retry: POST /v1/messages/:id/retry calls answered through the index',
  },
  ingressNodeArgs: {
    env: 'BENCH_INGRESS_NODE_ARGS',
    default: '',
    text: true,
    help: 'extra node flags for the ingress, e.g. "--max-semi-space-size=64"',
  },
};

function flagName(key) {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`).replace(/-s$/, '');
}

function parseBoolean(raw, name) {
  if (raw === undefined || raw === '') return true;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new Error(`${name}: expected a boolean, got "${raw}"`);
}

function parseBounded(raw, name, spec) {
  const value = Number(raw);
  if (!Number.isFinite(value) || value < spec.min || value > spec.max) {
    throw new Error(`${name}: expected a number in [${spec.min}, ${spec.max}], got "${raw}"`);
  }
  return spec.integer || spec.key === 'connections' || spec.key === 'rounds' ? Math.round(value) : value;
}

/** Splits argv into benchmark names and options (flags win over the environment). */
function parseArguments(argv, env = process.env) {
  const names = [];
  const flags = new Map();
  for (const arg of argv) {
    if (arg === '--') continue;
    if (arg.startsWith('--')) {
      const [name, ...rest] = arg.slice(2).split('=');
      flags.set(name, rest.length > 0 ? rest.join('=') : undefined);
    } else {
      names.push(arg);
    }
  }
  const options = {};
  for (const [key, spec] of Object.entries(OPTION_SPECS)) {
    const flag = flagName(key);
    const fromFlag = flags.has(flag);
    const raw = fromFlag ? flags.get(flag) : env[spec.env];
    flags.delete(flag);
    const label = fromFlag ? `--${flag}` : spec.env;
    const fallback = options.quick && spec.quick !== undefined ? spec.quick : spec.default;
    if (raw === undefined && !(fromFlag && spec.flag)) options[key] = fallback;
    else if (spec.flag) options[key] = parseBoolean(raw, label);
    else if (spec.text) options[key] = raw ?? '';
    else options[key] = parseBounded(raw, label, { ...spec, key });
  }
  const help = flags.delete('help');
  if (flags.size > 0)
    throw new Error(`unknown option(s): ${[...flags.keys()].map((f) => `--${f}`).join(' ')}`);
  return { names, options, help };
}

function usage(benchmarkNames) {
  const lines = [
    'usage: npm run bench [-- <benchmark>...]      (no name: run all)',
    '       node bench/run.js [<benchmark>...] [--option=value]',
    `benchmarks: ${benchmarkNames.join(', ')}`,
    'options (flag / environment variable, default):',
  ];
  for (const [key, spec] of Object.entries(OPTION_SPECS)) {
    lines.push(
      `  --${flagName(key)} `.padEnd(24) +
        `${spec.env} `.padEnd(27) +
        `${JSON.stringify(spec.default)}${spec.quick === undefined ? '' : ` (quick ${spec.quick})`}  ` +
        spec.help,
    );
  }
  lines.push('  KAFKA_BROKERS and REDIS_URL: use that infrastructure instead of `deploy/local/stack.sh up`');
  return lines.join('\n');
}

module.exports = { parseArguments, usage, OPTION_SPECS };
