'use strict';
/* global fetch, AbortSignal, AbortController */

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { setTimeout: sleep } = require('node:timers/promises');
const { ROOT, log } = require('./log');

const STOP_GRACE_MS = 20_000;

/**
 * The node flags every service process runs with, from `deploy/node-flags` (the one list the platform's
 * launchers use: scripts/run-platform.sh, the image's NODE_OPTIONS that the k8s manifests inherit; docs/memory.md),
 * so the bench measures what users run. `AMPFLOW_NODE_FLAGS`, when set (also empty), replaces them: for side-by-side
 * runs with other settings.
 */
function serviceNodeFlags(env = process.env) {
  const text =
    env.AMPFLOW_NODE_FLAGS ??
    fs.readFileSync(path.join(ROOT, 'deploy', 'node-flags'), 'utf8').replace(/#.*/g, '');
  return text.split(/\s+/).filter(Boolean);
}

/** A built service (`services/<name>/dist/main.js`): started with {@link serviceNodeFlags}. */
const isServiceMain = (script) => /(^|[\\/])services[\\/][\w-]+[\\/]dist[\\/]main\.js$/.test(script);

/** Runs a command to completion with inherited output; throws on failure or after `timeoutMs`. */
function runCommand(command, args, { cwd, timeoutMs, env = process.env }) {
  const started = Date.now();
  const result = spawnSync(command, args, { cwd, env, stdio: 'inherit', timeout: timeoutMs });
  if (result.error) throw new Error(`${command} ${args.join(' ')}: ${result.error.message}`);
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited with ${result.status ?? result.signal}`);
  }
  return Date.now() - started;
}

/** Runs a command and returns its stdout (bounded in time). */
function commandOutput(command, args, { cwd, timeoutMs }) {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: timeoutMs });
  if (result.error || result.status !== 0) return undefined;
  return result.stdout;
}

/** A port that was free on 127.0.0.1 a moment ago (the OS picks it). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const OUTPUT_TAIL_BYTES = 64 * 1024;

function isRunning(handle) {
  return handle.exitCode === undefined && handle.exitSignal === undefined;
}

/** Polls `url` until it answers 200; fails when the child exits or after `timeoutMs`. */
async function waitForHttpOk(handle, url, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (!isRunning(handle)) {
      throw new Error(
        `${handle.name} exited (${handle.exitCode ?? handle.exitSignal}) before ${url} answered 200`,
      );
    }
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      await response.arrayBuffer();
      if (response.status === 200) return;
      last = `HTTP ${response.status}`;
    } catch (err) {
      last = err.message;
    }
    await sleep(200);
  }
  throw new Error(`${handle.name}: ${url} did not answer 200 within ${timeoutMs} ms (last: ${last})`);
}

/**
 * Starts `node [service flags] [nodeArgs] script` from the repository root on a free loopback port (HTTP_PORT,
 * HTTP_HOST) with `env` over this process's environment, and adds it to `children` (stopped by `withChildren`).
 * A service's main gets the platform's node flags ({@link serviceNodeFlags}) first; `nodeArgs` come after them
 * and win. Its output is kept (the last 64 KiB, lines counted) for the report and for error messages.
 */
async function startTarget(name, script, { env = {}, nodeArgs = [], children }) {
  const port = await freePort();
  const flags = isServiceMain(script) ? serviceNodeFlags() : [];
  const child = spawn(process.execPath, [...flags, ...nodeArgs, script], {
    cwd: ROOT,
    env: { ...process.env, HTTP_PORT: String(port), HTTP_HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const handle = { name, child, pid: child.pid, output: '', outputLines: 0 };
  const keep = (chunk) => {
    const text = chunk.toString('utf8');
    handle.outputLines += (text.match(/\n/g) || []).length;
    handle.output = (handle.output + text).slice(-OUTPUT_TAIL_BYTES);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  handle.exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      handle.exitCode = code;
      handle.exitSignal = signal;
      resolve();
    });
    child.once('error', (err) => {
      handle.output += `\n[bench] could not start ${name}: ${err.message}\n`;
      handle.exitCode = -1;
      resolve();
    });
  });
  children.push(handle);
  log(`started ${name} (pid ${handle.pid}) on port ${port}${flags.length ? ` with ${flags.join(' ')}` : ''}`);
  return { handle, port, baseUrl: `http://127.0.0.1:${port}` };
}

/** Whether `ms` passed before `promise` settled. */
async function raceTimeout(promise, ms) {
  const timer = new AbortController();
  const timedOut = await Promise.race([
    promise.then(() => false),
    sleep(ms, true, { signal: timer.signal }).catch(() => false),
  ]);
  timer.abort();
  return timedOut;
}

/** SIGTERM, SIGKILL after 20 s; logs how it ended and its last output lines. Once per child. */
async function stopTarget(handle) {
  if (handle.stopped) return handle.stopped;
  let forced = false;
  if (isRunning(handle)) {
    handle.child.kill('SIGTERM');
    if ((await raceTimeout(handle.exited, STOP_GRACE_MS)) && isRunning(handle)) {
      forced = true;
      handle.child.kill('SIGKILL');
      await raceTimeout(handle.exited, 5_000);
    }
  }
  handle.stopped = { code: handle.exitCode, signal: handle.exitSignal, forced };
  log(
    `stopped ${handle.name} (pid ${handle.pid}): ${handle.exitCode ?? handle.exitSignal}` +
      `${forced ? ' after SIGKILL' : ''}; ${handle.outputLines} output lines`,
  );
  if (handle.outputLines > 0) {
    log(`  last output of ${handle.name}:\n${handle.output.split('\n').slice(-8).join('\n')}`);
  }
  return handle.stopped;
}

/** Runs `body(children)`; every child it started is stopped at the end, on errors and on Ctrl-C. */
async function withChildren(body) {
  const children = [];
  const stopAll = () => Promise.all(children.map(stopTarget));
  const onSignal = (signal) => {
    log(`${signal}: stopping the targets`);
    stopAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await body(children);
  } finally {
    await stopAll();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

module.exports = {
  runCommand,
  commandOutput,
  waitForHttpOk,
  isRunning,
  serviceNodeFlags,
  startTarget,
  stopTarget,
  withChildren,
};
