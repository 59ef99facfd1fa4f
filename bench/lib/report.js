'use strict';

/**
 * What every benchmark reports the same way: the machine it ran on, the table on stdout and the JSON file in
 * bench/results (`<name>-<timestamp>.json` and `<name>-latest.json`).
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { randomUUID } = require('node:crypto');
const { commandOutput } = require('./processes');
const { ROOT, RESULTS_DIR, log } = require('./log');
const { round } = require('./stats');

/** The machine and versions a result was measured with; `versions` adds tool versions (name -> version). */
function machineInfo(versions = {}) {
  const cpus = os.cpus();
  const gitCommit = commandOutput('git', ['rev-parse', 'HEAD'], { cwd: ROOT, timeoutMs: 5_000 })?.trim();
  const gitStatus = commandOutput('git', ['status', '--porcelain'], { cwd: ROOT, timeoutMs: 10_000 });
  return {
    hostname: os.hostname(),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpuCount: cpus.length,
    availableParallelism: os.availableParallelism?.() ?? cpus.length,
    cpuModel: cpus[0]?.model,
    totalMemoryMiB: Math.round(os.totalmem() / 2 ** 20),
    loadAverageAtStart: os.loadavg().map((v) => round(v, 2)),
    nodeVersion: process.version,
    kafkajsVersion: require('kafkajs/package.json').version,
    ...versions,
    gitCommit,
    gitWorktreeDirty: gitStatus === undefined ? undefined : gitStatus.trim().length > 0,
  };
}

/** A short id unique to one run (names its topics, groups and Redis keys): `<yyyymmddhhmmss>-<random>`. */
function runIdOf(startedAt) {
  return `${startedAt.replace(/[^0-9]/g, '').slice(0, 14)}-${randomUUID().slice(0, 6)}`;
}

/** Writes `<name>-<timestamp>.json` and `<name>-latest.json` in bench/results and says where. */
function writeResults(name, report) {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${name}-${report.startedAt.replace(/[:.]/g, '-')}.json`);
  const text = `${JSON.stringify(report, null, 2)}\n`;
  fs.writeFileSync(file, text);
  fs.writeFileSync(path.join(RESULTS_DIR, `${name}-latest.json`), text);
  log(`results: ${path.relative(ROOT, file)} (and bench/results/${name}-latest.json)`);
  return file;
}

/** A plain-text table with right-aligned numeric columns, printed with a blank line around it. */
function printTable(headers, rows) {
  const cells = rows.map((row) => row.map((c) => String(c)));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i].length)));
  const line = (row) => row.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const table = [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)];
  process.stdout.write(`\n${table.join('\n')}\n\n`);
}

/** `name cores, ...` for the CPU figures that could be read. */
function formatCores(cores) {
  return Object.entries(cores)
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => `${name} ${value}`)
    .join(', ');
}

function met(ok) {
  return ok ? 'met' : 'NOT met';
}

module.exports = { machineInfo, runIdOf, writeResults, printTable, formatCores, met, log, ROOT };
