'use strict';
/* global fetch, AbortSignal, AbortController */

const { spawn, spawnSync } = require('node:child_process');
const net = require('node:net');
const { setTimeout: sleep } = require('node:timers/promises');
const { ROOT, log } = require('./log');

const STOP_GRACE_MS = 20_000;

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

/**
 * Starts `node [nodeArgs] script` as a child with its own environment. Its stdout/stderr are kept (the last
 * 64 KiB) for the report and for error messages; lines are counted so a noisy child is visible.
 */
function startNodeChild(name, script, { cwd, env, nodeArgs = [] }) {
  const child = spawn(process.execPath, [...nodeArgs, script], {
    cwd,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const handle = {
    name,
    child,
    pid: child.pid,
    output: '',
    outputLines: 0,
    exitCode: undefined,
    exitSignal: undefined,
  };
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
  return handle;
}

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

/** SIGTERM, wait up to `graceMs` for the exit, then SIGKILL. Resolves with how it ended. */
async function stopChild(handle, graceMs) {
  if (!isRunning(handle)) return { code: handle.exitCode, signal: handle.exitSignal, forced: false };
  handle.child.kill('SIGTERM');
  const grace = new AbortController();
  const outcome = await Promise.race([
    handle.exited.then(() => 'exited'),
    sleep(graceMs, 'timeout', { signal: grace.signal }).catch(() => 'aborted'),
  ]);
  grace.abort();
  let forced = false;
  if (outcome === 'timeout' && isRunning(handle)) {
    forced = true;
    handle.child.kill('SIGKILL');
    const kill = new AbortController();
    await Promise.race([handle.exited, sleep(5_000, undefined, { signal: kill.signal }).catch(() => {})]);
    kill.abort();
  }
  return { code: handle.exitCode, signal: handle.exitSignal, forced };
}

/**
 * Starts `node [nodeArgs] script` from the repository root on a free loopback port (HTTP_PORT, HTTP_HOST)
 * with `env` over this process's environment, and adds it to `children` (stopped by `withChildren`).
 */
async function startTarget(name, script, { env = {}, nodeArgs = [], children }) {
  const port = await freePort();
  const handle = startNodeChild(name, script, {
    cwd: ROOT,
    nodeArgs,
    env: { ...process.env, HTTP_PORT: String(port), HTTP_HOST: '127.0.0.1', ...env },
  });
  children.push(handle);
  log(`started ${name} (pid ${handle.pid}) on port ${port}`);
  return { handle, port, baseUrl: `http://127.0.0.1:${port}` };
}

/** SIGTERM (SIGKILL after 20 s), then logs how it ended and its last output lines. Once per child. */
async function stopTarget(handle) {
  if (handle.stopped) return handle.stopped;
  const outcome = await stopChild(handle, STOP_GRACE_MS);
  handle.stopped = outcome;
  log(
    `stopped ${handle.name} (pid ${handle.pid}): ${outcome.code ?? outcome.signal}` +
      `${outcome.forced ? ' after SIGKILL' : ''}; ${handle.outputLines} output lines`,
  );
  if (handle.outputLines > 0) {
    log(`  last output of ${handle.name}:\n${handle.output.split('\n').slice(-8).join('\n')}`);
  }
  return outcome;
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
  startTarget,
  stopTarget,
  withChildren,
};
