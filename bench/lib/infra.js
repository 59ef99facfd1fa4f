'use strict';
/* global URL */

/** What every benchmark needs before it starts: built services and a reachable Kafka, registry and Redis. */
const path = require('node:path');
const { commandOutput, runCommand } = require('./processes');
const { findPidByName, pidListeningOn, readPidFile } = require('./cpu');
const { ROOT, log } = require('./log');

/** Builds every workspace (`npx tsc -b` at the root; incremental, so quick when nothing changed). */
function ensureBuild() {
  log('building: npx tsc -b');
  const ms = runCommand('npx', ['tsc', '-b'], { cwd: ROOT, timeoutMs: 10 * 60_000 });
  log(`build ok (${(ms / 1000).toFixed(1)} s)`);
}

/**
 * Kafka, registry and Redis endpoints: KAFKA_BROKERS and REDIS_URL when both are given, otherwise the local
 * stack (`deploy/local/stack.sh up` is idempotent; its `env` command prints the endpoints).
 */
function ensureInfrastructure(env = process.env) {
  const defaultRegistry = 'http://127.0.0.1:8081/apis/ccompat/v7';
  if (env.KAFKA_BROKERS && env.REDIS_URL) {
    return {
      source: 'environment',
      kafkaBrokers: env.KAFKA_BROKERS,
      redisUrl: env.REDIS_URL,
      schemaRegistryUrl: env.SCHEMA_REGISTRY_URL || defaultRegistry,
    };
  }
  const stack = path.join(ROOT, 'deploy', 'local', 'stack.sh');
  log('ensuring the local stack: bash deploy/local/stack.sh up');
  runCommand('bash', [stack, 'up'], { cwd: ROOT, timeoutMs: 10 * 60_000 });
  const printed = commandOutput('bash', [stack, 'env'], { cwd: ROOT, timeoutMs: 30_000 }) ?? '';
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
    schemaRegistryUrl: env.SCHEMA_REGISTRY_URL || vars.SCHEMA_REGISTRY_URL || defaultRegistry,
  };
}

function portOf(url, fallback) {
  try {
    const u = new URL(url.includes('://') ? url : `tcp://${url}`);
    return Number(u.port) || fallback;
  } catch {
    return fallback;
  }
}

/**
 * PIDs of the stack's processes, for CPU and memory accounting (undefined when not found): the process
 * listening on the first broker's port, the registry's port and Redis's port (found through /proc, so also
 * for a stack started from another checkout), else the local stack's pid files and the first redis-server.
 */
function stackPids(infra, { registry = false } = {}) {
  const local = infra.source !== 'environment';
  const pidFile = (name) =>
    local ? readPidFile(path.join(ROOT, '.ampflow', 'pids', `${name}.pid`)) : undefined;
  const firstBroker = infra.kafkaBrokers.split(/[\s,]+/).filter(Boolean)[0] ?? '127.0.0.1:9092';
  const pids = {
    kafka: pidListeningOn(portOf(firstBroker, 9092)) ?? pidFile('kafka'),
    redis: pidListeningOn(portOf(infra.redisUrl, 6379)) ?? findPidByName('redis-server'),
  };
  if (registry) pids.registry = pidListeningOn(portOf(infra.schemaRegistryUrl, 8081)) ?? pidFile('registry');
  return pids;
}

/** Build (unless skipped) and infrastructure, logged; returns the endpoints and the brokers as a list. */
function prepare(options) {
  if (!options.skipBuild) ensureBuild();
  const infra = ensureInfrastructure();
  log(
    `Kafka ${infra.kafkaBrokers}, Redis ${infra.redisUrl}, registry ${infra.schemaRegistryUrl} (${infra.source})`,
  );
  return { ...infra, brokers: infra.kafkaBrokers.split(/[\s,]+/).filter(Boolean) };
}

module.exports = { prepare, stackPids };
