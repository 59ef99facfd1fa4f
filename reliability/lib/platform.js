'use strict';
/* global fetch, AbortSignal */

/**
 * The platform under test: a Kafka broker and an Apicurio Registry of the suite's own (packages/testing
 * fault-stack, through deploy/local/stack.sh on free ports) and a redis-server of its own, and the four services
 * as built processes (`node services/<name>/dist/main.js`) pointed at them. Faults only ever hit these processes:
 * the shared stack on 9092/8081/6379 is never touched. Every service's stdout and stderr go to a file under the
 * run's log directory, which the log check reads at the end.
 */
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { randomBytes } = require('node:crypto');
const { setTimeout: sleep } = require('node:timers/promises');
const { startFaultStack, startRedisProcess } = require('@ampflow/testing');

const ROOT = path.resolve(__dirname, '..', '..');
const READY_TIMEOUT_MS = 120_000;

function log(message) {
  process.stdout.write(`[reliability] ${message}\n`);
}

function freePort(host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** The suite's own broker, registry and redis-server. */
async function startInfrastructure({ logDir }) {
  const started = Date.now();
  const stackLog = fs.createWriteStream(path.join(logDir, 'fault-stack.log'), { flags: 'a' });
  const stack = await startFaultStack({ onLog: (line) => stackLog.write(`${line}\n`) });
  const redis = await startRedisProcess();
  log(
    `own infrastructure in ${((Date.now() - started) / 1000).toFixed(0)} s: Kafka ${stack.kafkaBrokers[0]}, ` +
      `registry ${stack.schemaRegistryUrl}, Redis ${redis.url}`,
  );
  return {
    stack,
    redis,
    brokers: stack.kafkaBrokers,
    kafkaBrokers: stack.kafkaBrokers.join(','),
    schemaRegistryUrl: stack.schemaRegistryUrl,
    redisUrl: redis.url,
    async stop() {
      await redis.stop().catch((err) => log(`stopping redis: ${err.message}`));
      await stack.stop().catch((err) => log(`stopping the fault stack: ${err.message}`));
      stackLog.end();
    },
  };
}

/** The pid of the process listening on 127.0.0.1:`port` (from /proc/net/tcp and the fds), or undefined. */
function pidListeningOn(port) {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 9 && cols[1].endsWith(`:${hexPort}`) && cols[3] === '0A') inodes.add(cols[9]);
    }
  }
  if (inodes.size === 0) return undefined;
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let fds = [];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
        const m = target.match(/^socket:\[(\d+)\]$/);
        if (m && inodes.has(m[1])) return Number(pid);
      } catch {
        // gone meanwhile
      }
    }
  }
  return undefined;
}

/**
 * One service process that can be started, killed (any signal) and started again on the same port and
 * environment. Output is appended to `<logDir>/<label>.log`; the label is the service's name, or
 * `<name>-<n>` for the n-th instance (from 1) when a service runs as several.
 */
class ServiceProcess {
  constructor({ name, env, port, logDir, label = name }) {
    this.name = name;
    this.label = label;
    this.env = env;
    this.port = port;
    this.baseUrl = `http://127.0.0.1:${port}`;
    this.logFile = path.join(logDir, `${label}.log`);
    this.script = path.join(ROOT, 'services', name, 'dist', 'main.js');
    this.child = undefined;
    this.starts = 0;
    this.exits = [];
  }

  get pid() {
    return this.child?.pid;
  }

  running() {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  start() {
    const out = fs.openSync(this.logFile, 'a');
    const child = spawn(process.execPath, [this.script], {
      cwd: ROOT,
      env: { ...process.env, ...this.env, HTTP_PORT: String(this.port), HTTP_HOST: '127.0.0.1' },
      stdio: ['ignore', out, out],
    });
    fs.closeSync(out);
    this.child = child;
    this.starts += 1;
    child.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.exits.push({ at: Date.now(), code, signal });
        resolve();
      }),
    );
  }

  async waitReady(timeoutMs = READY_TIMEOUT_MS) {
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer';
    while (Date.now() < deadline) {
      if (!this.running()) throw new Error(`${this.label} exited before it was ready (see ${this.logFile})`);
      try {
        const res = await fetch(`${this.baseUrl}/readyz`, { signal: AbortSignal.timeout(2_000) });
        last = `${res.status} ${(await res.text()).slice(0, 300)}`;
        if (res.status === 200) return;
      } catch (err) {
        last = err.message;
      }
      await sleep(250);
    }
    throw new Error(`${this.label} not ready within ${timeoutMs} ms (last: ${last})`);
  }

  /** Sends `signal`; for SIGKILL/SIGTERM waits until the process is gone. */
  async kill(signal = 'SIGKILL') {
    if (!this.running()) return;
    const child = this.child;
    child.kill(signal);
    if (signal === 'SIGKILL' || signal === 'SIGTERM') await child.exited;
  }

  /** SIGTERM (SIGKILL after 30 s). */
  async stop() {
    if (!this.running()) return;
    const child = this.child;
    child.kill('SIGCONT');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await child.exited;
    clearTimeout(timer);
  }

  /** Resident set size in bytes, from /proc (undefined when not running). */
  rssBytes() {
    try {
      const status = fs.readFileSync(`/proc/${this.pid}/status`, 'utf8');
      const m = status.match(/VmRSS:\s+(\d+) kB/);
      return m ? Number(m[1]) * 1024 : undefined;
    } catch {
      return undefined;
    }
  }
}

/**
 * The four services on `infra` (`kafkaBrokers`, `schemaRegistryUrl`, `redisUrl`: the suite's own, or any other
 * stack), with `secrets` (suite-only values, `suiteSecrets()`) and topics, groups and Redis namespaces under
 * `prefix`. The notifier allows http to `allowedNetworks` only (the suite's receivers listen on ::1, so names
 * that resolve to 127.0.0.1 are private addresses it must refuse). `instances` (service name -> count, default 1)
 * runs a service as several processes with the same environment on ports of their own, as replicas of one
 * deployment. Started in dependency order and waited for readiness.
 */
async function startPlatform({ infra, logDir, secrets, prefix, overrides = {}, instances = {} }) {
  const common = {
    KAFKA_BROKERS: infra.kafkaBrokers,
    REDIS_URL: infra.redisUrl,
    SCHEMA_REGISTRY_URL: infra.schemaRegistryUrl,
    KAFKA_TOPIC_PREFIX: prefix,
    LOG_LEVEL: 'info',
    SHUTDOWN_DRAIN_MS: '5000',
    NOT_READY_AFTER_MS: '30000',
    STUCK_EXIT_MS: '300000',
  };
  const specs = {
    ingress: {
      SMARTCAR_MANAGEMENT_TOKEN: secrets.smartcarManagementToken,
      TELEMATICA_WEBHOOK_SECRET: secrets.telematicaWebhookSecret,
      DEDUP_TTL_SECONDS: '3600',
      RAW_TOPIC_PARTITIONS: '3',
    },
    normalizer: { NORMALIZER_GROUP_ID: `${prefix}normalizer`, CANONICAL_TOPIC_PARTITIONS: '3' },
    'session-aggregator': {
      AGGREGATOR_GROUP_ID: `${prefix}aggregator`,
      AGGREGATOR_REDIS_NAMESPACE: `${prefix}sessions`,
      SESSIONS_TOPIC_PARTITIONS: '3',
    },
    notifier: {
      NOTIFIER_GROUP_ID: `${prefix}notifier`,
      NOTIFIER_REDIS_NAMESPACE: `${prefix}notifier`,
      NOTIFIER_ADMIN_TOKEN: secrets.notifierAdminToken,
      NOTIFIER_SECRETS_KEY: secrets.notifierSecretsKey,
      NOTIFIER_ALLOW_HTTP: 'true',
      NOTIFIER_ALLOWED_NETWORKS: '::1/128',
      NOTIFIER_RETRY_TOPIC_PARTITIONS: '3',
      // Short enough that a run sees retries and dead letters; the shape (immediate, then growing) is the default's.
      NOTIFIER_RETRY_SCHEDULE: '0,1s,2s,4s,8s',
      NOTIFIER_REQUEST_TIMEOUT_MS: '3000',
      // A circuit opens after 20 consecutive failures and probes after 1 s: a failing endpoint's messages still
      // wait while it is open, but a run settles within minutes rather than one probe per default 60 s.
      NOTIFIER_CIRCUIT_FAILURES: '20',
      NOTIFIER_CIRCUIT_COOLDOWN_MS: '1000',
    },
  };
  /** Service name -> its instances (one unless `instances` says more). */
  const replicas = {};
  for (const [name, env] of Object.entries(specs)) {
    const count = instances[name] ?? 1;
    replicas[name] = [];
    for (let i = 1; i <= count; i++) {
      replicas[name].push(
        new ServiceProcess({
          name,
          label: count > 1 ? `${name}-${i}` : name,
          env: { ...common, ...env, ...(overrides[name] ?? {}) },
          port: await freePort(),
          logDir,
        }),
      );
    }
  }
  const all = (names) => names.flatMap((name) => replicas[name]);
  const order = ['notifier', 'session-aggregator', 'normalizer', 'ingress'];
  const stopAll = async () => {
    // The instances of one service stop together, the services in reverse dependency order.
    for (const name of [...order].reverse()) await Promise.all(replicas[name].map((s) => s.stop()));
  };
  for (const service of all(order)) service.start();
  try {
    await Promise.all(all(order).map((service) => service.waitReady()));
  } catch (err) {
    // One service that never became ready must not leave the others running after the suite has ended.
    await stopAll();
    throw err;
  }
  log(
    `services ready: ${all(order)
      .map((s) => `${s.label} ${s.baseUrl} (pid ${s.pid})`)
      .join(', ')}`,
  );
  const services = Object.fromEntries(order.map((name) => [name, replicas[name][0]]));
  return {
    services,
    replicas,
    ingress: services.ingress,
    normalizer: services.normalizer,
    aggregator: services['session-aggregator'],
    notifier: services.notifier,
    stop: stopAll,
  };
}

/**
 * Secrets of the suite's own, fresh per run: the log check looks for exactly these. Never defaults of a
 * service: every service requires its secrets from the environment.
 */
function suiteSecrets() {
  return {
    smartcarManagementToken: `rel-amt-${randomBytes(16).toString('hex')}`,
    telematicaWebhookSecret: `whsec_${randomBytes(24).toString('base64')}`,
    notifierAdminToken: `rel-admin-${randomBytes(16).toString('hex')}`,
    // `<key id>:<32 bytes, hex>`: the key that encrypts endpoint secrets in the endpoints topic.
    notifierSecretsKey: `rel:${randomBytes(32).toString('hex')}`,
  };
}

module.exports = {
  ROOT,
  log,
  freePort,
  startInfrastructure,
  startPlatform,
  suiteSecrets,
  pidListeningOn,
  ServiceProcess,
};
