'use strict';
/* global fetch, AbortSignal, AbortController */

const { spawn, spawnSync } = require('node:child_process');
const net = require('node:net');
const { setTimeout: sleep } = require('node:timers/promises');

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

module.exports = { runCommand, commandOutput, freePort, startNodeChild, waitForHttpOk, stopChild, isRunning };
