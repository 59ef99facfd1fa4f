'use strict';
/* global fetch, AbortSignal */

/**
 * Idle cost of the notifier: starts services/notifier/dist/main.js on a fresh run prefix (its own topics, a
 * Redis namespace of its own, one endpoint registered so the delivery path is set up), waits until ready plus
 * `--settle` seconds, then reads its CPU time from /proc over `--seconds` (default 60) with nothing to do, and
 * its peak RSS. Cleans up its topics and Redis keys.
 *
 *   KAFKA_BROKERS=... REDIS_URL=... SCHEMA_REGISTRY_URL=... node bench/tools/notifier-idle.js [--seconds=60]
 *     [--settle=15] [--profile]   (--profile: a CPU profile of the whole run in bench/results/profiles/)
 */
const fs = require('node:fs');
const path = require('node:path');
const { setTimeout: sleep } = require('node:timers/promises');
const { prepare } = require('../lib/infra');
const kafka = require('../lib/kafka');
const { RESULTS_DIR } = require('../lib/log');
const { NOTIFIER_MAIN, adminToken, notifierEnv, registerEndpoint } = require('../lib/notifier-service');
const { deleteRedisNamespace } = require('../lib/redis');
const { startTarget, stopTarget, waitForHttpOk, withChildren } = require('../lib/processes');
const report = require('../lib/report');
const { runPrefix, runTopics } = require('../lib/topics');

const arg = (name, fallback) => {
  const found = process.argv.find((a) => a.startsWith(`--${name}=`));
  return found ? Number(found.split('=')[1]) : fallback;
};

/** utime + stime of a process, in seconds (/proc/<pid>/stat, clock ticks of 100 Hz). */
function cpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
const statusKb = (pid, field) =>
  Number(new RegExp(`${field}:\\s+(\\d+)`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);

async function main() {
  const seconds = arg('seconds', 60);
  const settle = arg('settle', 15);
  const infra = prepare({ skipBuild: true });
  const runId = report.runIdOf(new Date().toISOString());
  const topics = runTopics(runPrefix(runId));
  const namespace = `bench:${runId}:notifier`;
  const token = adminToken();
  const admin = await kafka.connectAdmin(infra.brokers);
  try {
    const env = notifierEnv({
      infra,
      prefix: topics.prefix,
      groupId: `${topics.prefix}notifier`,
      namespace,
      token,
    });
    await withChildren(async (children) => {
      const nodeArgs = process.argv.includes('--profile')
        ? [
            '--cpu-prof',
            `--cpu-prof-dir=${path.join(RESULTS_DIR, 'profiles')}`,
            `--cpu-prof-name=notifier-idle-${runId}.cpuprofile`,
          ]
        : [];
      const notifier = await startTarget('notifier', NOTIFIER_MAIN, { env, nodeArgs, children });
      await waitForHttpOk(notifier.handle, `${notifier.baseUrl}/readyz`, 90_000);
      await registerEndpoint(notifier.baseUrl, token, { url: 'http://127.0.0.1:9/hook' });
      await sleep(settle * 1000);
      const pid = notifier.handle.pid;
      const c0 = cpuSeconds(pid);
      const t0 = Date.now();
      await sleep(seconds * 1000);
      const cpu = cpuSeconds(pid) - c0;
      const wall = (Date.now() - t0) / 1000;
      const res = await fetch(`${notifier.baseUrl}/metrics`, { signal: AbortSignal.timeout(5_000) });
      const metrics = await res.text();
      const heapUsed = /^nodejs_heap_size_used_bytes\S* (\S+)/m.exec(metrics)?.[1];
      report.log(
        `notifier idle over ${wall.toFixed(1)} s: ${((cpu / wall) * 100).toFixed(2)} % of a core ` +
          `(${cpu.toFixed(2)} s CPU); RSS ${Math.round(statusKb(pid, 'VmRSS') / 1024)} MiB, peak ` +
          `${Math.round(statusKb(pid, 'VmHWM') / 1024)} MiB, V8 heap used ${Math.round(Number(heapUsed) / 2 ** 20)} MiB`,
      );
      await stopTarget(notifier.handle);
    });
  } finally {
    await deleteRedisNamespace(infra.redisUrl, namespace).catch(() => undefined);
    await kafka.deleteRunResources(admin, topics.prefix, { registryUrl: infra.schemaRegistryUrl });
    await admin.disconnect().catch(() => {});
  }
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exit(1);
});
