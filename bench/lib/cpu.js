'use strict';

/**
 * CPU accounting from /proc (Linux only; elsewhere every figure is undefined): how many cores each process
 * used during a run, and how busy the whole machine was. On a 2-core box the load generator, the target,
 * Kafka and Redis all share the same CPUs, so these figures say where the time went.
 */
const fs = require('node:fs');
const path = require('node:path');
const { commandOutput } = require('./processes');

const CLOCK_TICKS = Number(commandOutput('getconf', ['CLK_TCK'], { timeoutMs: 2_000 })?.trim()) || 100;

/** utime + stime of a process, in seconds (undefined when it cannot be read). */
function processCpuSeconds(pid) {
  if (!pid) return undefined;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command (which may contain spaces) start at ") ": state is field 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** Busy and total CPU seconds of the machine (all cores). */
function systemCpuSeconds() {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const values = line.trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, idle, iowait, irq, softirq, steal] = values;
    const busy = user + nice + system + irq + softirq + steal;
    return {
      busy: busy / CLOCK_TICKS,
      total: (busy + idle + iowait) / CLOCK_TICKS,
      steal: steal / CLOCK_TICKS,
    };
  } catch {
    return undefined;
  }
}

/** The first process whose command name is `name` (e.g. redis-server), by scanning /proc. */
function findPidByName(name) {
  try {
    for (const entry of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        if (fs.readFileSync(path.join('/proc', entry, 'comm'), 'utf8').trim() === name) return Number(entry);
      } catch {
        // the process went away meanwhile
      }
    }
  } catch {
    // no /proc
  }
  return undefined;
}

function readPidFile(file) {
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Starts measuring `pids` (name -> pid); `stop()` returns cores used by each and by the machine. */
function startCpuSample(pids) {
  const startedAt = process.hrtime.bigint();
  const before = Object.fromEntries(
    Object.entries(pids).map(([name, pid]) => [name, processCpuSeconds(pid)]),
  );
  const systemBefore = systemCpuSeconds();
  return {
    stop() {
      const wallSeconds = Number(process.hrtime.bigint() - startedAt) / 1e9;
      const cores = {};
      for (const [name, pid] of Object.entries(pids)) {
        const after = processCpuSeconds(pid);
        cores[name] =
          after === undefined || before[name] === undefined
            ? undefined
            : Math.round(((after - before[name]) / wallSeconds) * 100) / 100;
      }
      const systemAfter = systemCpuSeconds();
      if (systemBefore && systemAfter) {
        cores.machineBusy = Math.round(((systemAfter.busy - systemBefore.busy) / wallSeconds) * 100) / 100;
        cores.machineSteal = Math.round(((systemAfter.steal - systemBefore.steal) / wallSeconds) * 100) / 100;
        const known = Object.keys(pids).reduce((sum, name) => sum + (cores[name] ?? 0), 0);
        /** Everything else on the machine (other processes, kernel work not charged to them). */
        cores.everythingElse = Math.round((cores.machineBusy - known) * 100) / 100;
      }
      return { wallSeconds: Math.round(wallSeconds * 100) / 100, cores };
    },
  };
}

module.exports = { startCpuSample, findPidByName, readPidFile, processCpuSeconds };
