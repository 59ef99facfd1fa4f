'use strict';
/* global setInterval, clearInterval */

/**
 * CPU accounting from /proc (Linux only; elsewhere every figure is undefined): how many cores each process
 * used during a run, and how busy the whole machine was. On a 2-core box the load generator, the target,
 * Kafka and Redis all share the same CPUs, so these figures say where the time went.
 */
const fs = require('node:fs');
const path = require('node:path');
const { commandOutput } = require('./processes');

const CLOCK_TICKS = Number(commandOutput('getconf', ['CLK_TCK'], { timeoutMs: 2_000 })?.trim()) || 100;

/**
 * utime + stime of a process (all its threads), plus cutime + cstime (its waited-for children), in seconds
 * (undefined when it cannot be read).
 */
function processCpuSeconds(pid) {
  if (!pid) return undefined;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command (which may contain spaces) start at ") ": state is field 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** VmRSS (resident now) and VmHWM (peak resident since the process started) in MiB, from /proc/<pid>/status. */
function processMemoryMiB(pid) {
  if (!pid) return undefined;
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (key) => Number(status.match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'))?.[1]);
    const mib = (v) => (Number.isFinite(v) ? Math.round((v / 1024) * 10) / 10 : undefined);
    return { rss: mib(kib('VmRSS')), hwm: mib(kib('VmHWM')) };
  } catch {
    return undefined;
  }
}

/**
 * The process listening on 127.0.0.1/0.0.0.0:`port` (TCP, IPv4 or IPv6), by its socket inode in
 * /proc/net/tcp{,6} and the fds of every process (needs the right to read their fd directories: root, or the
 * same user). Undefined when not found.
 */
function pidListeningOn(port) {
  const inodes = new Set();
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text;
    try {
      text = fs.readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      // local_address is cols[1] ("0100007F:2384"), state cols[3] ("0A" = LISTEN), inode cols[9]
      if (cols.length > 9 && cols[3] === '0A' && cols[1].endsWith(`:${hexPort}`)) inodes.add(cols[9]);
    }
  }
  if (inodes.size === 0) return undefined;
  try {
    for (const entry of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      let fds;
      try {
        fds = fs.readdirSync(`/proc/${entry}/fd`);
      } catch {
        continue;
      }
      for (const fd of fds) {
        try {
          const target = fs.readlinkSync(`/proc/${entry}/fd/${fd}`);
          if (target.startsWith('socket:[') && inodes.has(target.slice(8, -1))) return Number(entry);
        } catch {
          // gone meanwhile
        }
      }
    }
  } catch {
    // no /proc
  }
  return undefined;
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
      const seconds = {};
      for (const [name, pid] of Object.entries(pids)) {
        const after = processCpuSeconds(pid);
        if (after !== undefined && before[name] !== undefined) seconds[name] = after - before[name];
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
      return {
        wallSeconds: Math.round(wallSeconds * 100) / 100,
        cores,
        seconds,
        exactWallSeconds: wallSeconds,
      };
    },
  };
}

/**
 * Samples VmRSS of `pids` (name -> pid) every `intervalMs` until `stop()`, which returns per name the peak
 * sampled RSS in the window and VmHWM (the process's own peak since it started) at the end, in MiB.
 */
function startMemorySample(pids, intervalMs = 1_000) {
  const peak = {};
  const sample = () => {
    for (const [name, pid] of Object.entries(pids)) {
      const rss = processMemoryMiB(pid)?.rss;
      if (rss !== undefined) peak[name] = Math.max(peak[name] ?? 0, rss);
    }
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      sample();
      const out = {};
      for (const [name, pid] of Object.entries(pids)) {
        out[name] = { peakRssMiB: peak[name], hwmMiB: processMemoryMiB(pid)?.hwm };
      }
      return out;
    },
  };
}

/**
 * CPU seconds of a JVM's JIT compiler threads (`C1 CompilerThre…`, `C2 CompilerThre…` by their /proc comm), or
 * undefined when they cannot be read. A freshly started broker compiles for minutes under load; that is a
 * start-up cost, not its steady state.
 */
function jitCpuSeconds(pid) {
  if (!pid) return undefined;
  let tasks;
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  let ticks = 0;
  for (const tid of tasks) {
    try {
      if (!/^C[12] CompilerThre/.test(fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8'))) continue;
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return ticks / CLOCK_TICKS;
}

module.exports = {
  jitCpuSeconds,
  startCpuSample,
  startMemorySample,
  findPidByName,
  readPidFile,
  processCpuSeconds,
  processMemoryMiB,
  pidListeningOn,
};
