'use strict';

const path = require('node:path');
const { commandOutput, runCommand } = require('./processes');

/** Builds every workspace (`npx tsc -b` at the root; incremental, so quick when nothing changed). */
function ensureBuild(root) {
  process.stdout.write('[bench] building: npx tsc -b\n');
  const ms = runCommand('npx', ['tsc', '-b'], { cwd: root, timeoutMs: 10 * 60_000 });
  process.stdout.write(`[bench] build ok (${(ms / 1000).toFixed(1)} s)\n`);
}

/**
 * Kafka and Redis endpoints: KAFKA_BROKERS and REDIS_URL when both are given, otherwise the local stack
 * (`deploy/local/stack.sh up` is idempotent; its `env` command prints the endpoints).
 */
function ensureInfrastructure(root, env = process.env) {
  if (env.KAFKA_BROKERS && env.REDIS_URL) {
    return { source: 'environment', kafkaBrokers: env.KAFKA_BROKERS, redisUrl: env.REDIS_URL };
  }
  const stack = path.join(root, 'deploy', 'local', 'stack.sh');
  process.stdout.write('[bench] ensuring the local stack: bash deploy/local/stack.sh up\n');
  runCommand('bash', [stack, 'up'], { cwd: root, timeoutMs: 10 * 60_000 });
  const printed = commandOutput('bash', [stack, 'env'], { cwd: root, timeoutMs: 30_000 }) ?? '';
  const vars = Object.fromEntries(
    printed
      .split('\n')
      .map((line) => line.match(/^([A-Z_]+)=(.*)$/))
      .filter(Boolean)
      .map((m) => [m[1], m[2]]),
  );
  return {
    source: 'deploy/local/stack.sh',
    kafkaBrokers: env.KAFKA_BROKERS || vars.KAFKA_BROKERS || '127.0.0.1:9092',
    redisUrl: env.REDIS_URL || vars.REDIS_URL || 'redis://127.0.0.1:6379',
  };
}

module.exports = { ensureBuild, ensureInfrastructure };
