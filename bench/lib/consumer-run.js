'use strict';

/**
 * One measured run of a consuming process (a service's built main.js or a bench baseline) over records
 * already on its input topics: its consumer group is given offsets at `start` (the topics' ends before the
 * pre-fill), the process is started, and the group's commits are polled until it has committed the whole
 * range up to `end` (the ends after the pre-fill) on every partition. Committed means done: the services
 * commit only after their outputs are acknowledged. The topics are the run's own (`bench.<runId>.`), so the
 * range is the pre-fill; were anything else appended meanwhile, it would be in the range, and records appended
 * later are not counted.
 */
const { processMemoryMiB, startCpuSample } = require('./cpu');
const { committedSince, pollUntil, rangeSize, setGroupOffsets, throughput } = require('./kafka');
const { isRunning, startTarget } = require('./processes');
const { round } = require('./stats');

const POLL_INTERVAL_MS = 200;

async function measureConsumerRun({ name, script, env, groupId, start, end, admin, pids, children }) {
  const records = rangeSize(start, end);
  await setGroupOffsets(admin, groupId, start);
  const t0 = process.hrtime.bigint();
  const target = await startTarget(name, script, { env, children });
  const cpu = startCpuSample({ target: target.handle.pid, benchProcess: process.pid, ...pids });
  const poll = await pollUntil(() => committedSince(admin, groupId, start, end), records, {
    t0,
    intervalMs: POLL_INTERVAL_MS,
    timeoutMs: Math.max(120_000, records * 2), // at least 500 records/s
    isFailed: () =>
      !isRunning(target.handle) &&
      `${name} exited (${target.handle.exitCode ?? target.handle.exitSignal}) before committing every ` +
        `record; last output:\n${target.handle.output.split('\n').slice(-8).join('\n')}`,
  });
  const usage = cpu.stop();
  const targetCores = usage.cores.target;
  // VmHWM: the target's peak resident memory since it started (read before the caller stops it).
  const targetPeakRssMiB = processMemoryMiB(target.handle.pid)?.hwm;
  return {
    target,
    result: {
      name,
      groupId,
      ...throughput(poll, records),
      cpu: usage,
      targetPeakRssMiB,
      targetCpuMicrosPerRecord:
        targetCores === undefined ? undefined : round(((targetCores * usage.wallSeconds) / records) * 1e6, 1),
      pollSamples: poll.samples.length,
    },
  };
}

module.exports = { measureConsumerRun, POLL_INTERVAL_MS };
