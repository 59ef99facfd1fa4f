'use strict';

/**
 * Benchmark entry point: `npm run bench` runs every benchmark, `npm run bench -- ingress` only the named ones.
 * Options: see `node bench/run.js --help` (BENCH_* environment variables work through npm).
 */
const { parseArguments, usage } = require('./lib/options');

const BENCHMARKS = {
  ingress: () => require('./ingress'),
  normalizer: () => require('./normalizer'),
  aggregator: () => require('./aggregator'),
  notifier: () => require('./notifier'),
  e2e: () => require('./e2e'),
  'dlq-retry': () => require('./dlq-retry'),
  floor: () => require('./floor'),
};

async function main() {
  const { names, options, help } = parseArguments(process.argv.slice(2));
  if (help) {
    process.stdout.write(`${usage(Object.keys(BENCHMARKS))}\n`);
    return;
  }
  const unknown = names.filter((name) => !Object.hasOwn(BENCHMARKS, name));
  if (unknown.length > 0) {
    throw new Error(
      `unknown benchmark(s): ${unknown.join(', ')} (known: ${Object.keys(BENCHMARKS).join(', ')})`,
    );
  }
  const selected = names.length > 0 ? [...new Set(names)] : Object.keys(BENCHMARKS);
  for (const name of selected) {
    process.stdout.write(`[bench] === ${name} ===\n`);
    await BENCHMARKS[name]().run(options);
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`[bench] failed: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  },
);
