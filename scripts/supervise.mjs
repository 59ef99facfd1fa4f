// Supervises the platform's services for `npm start` (scripts/run-platform.sh execs it after setup).
//
//   node scripts/supervise.mjs '<spec JSON>'
//
// spec: {
//   services: [{ name, command: [file, ...args], log?: path, readyUrl?: url }],
//   restartInitialMs?: 1000, restartMaxMs?: 30000,  // backoff: initial, doubling per quick crash, capped
//   resetAfterMs?: 60000,   // a service up this long counts as healthy again: its next crash restarts after initialMs
//   readyTimeoutMs?: 60000, readyPollMs?: 500,      // readiness wait after each (re)start, GET readyUrl until 2xx
//   stopTimeoutMs?: 30000,  // after SIGTERM, how long services get before SIGKILL
//   readyMessage?: string, stoppedMessage?: string, // printed once all first starts settled / after a clean stop
// }
//
// Each service runs in its own session (like setsid), so a Ctrl-C in the terminal reaches only this process,
// which then stops every service with one SIGTERM. A service that exits on its own (services exit non-zero
// on purpose when they are stuck) is restarted with exponential backoff; one that never becomes ready is
// reported and left running. Plain node, no dependencies: it runs before and apart from the workspace build.
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { request } from 'node:http';
import { dirname } from 'node:path';
import process from 'node:process';
import { clearTimeout, setTimeout } from 'node:timers';

const say = (line) => process.stderr.write(`[run] ${line}\n`);

function parseSpec(text) {
  let spec;
  try {
    spec = JSON.parse(text ?? '');
  } catch {
    throw new Error('usage: supervise.mjs \'{"services":[{"name":"x","command":["node","x.js"]}]}\'');
  }
  if (!Array.isArray(spec.services) || spec.services.length === 0) throw new Error('spec.services is empty');
  for (const s of spec.services) {
    if (typeof s.name !== 'string' || !Array.isArray(s.command) || s.command.length === 0) {
      throw new Error(`each service needs a name and a command: ${JSON.stringify(s)}`);
    }
  }
  return {
    restartInitialMs: 1_000,
    restartMaxMs: 30_000,
    resetAfterMs: 60_000,
    readyTimeoutMs: 60_000,
    readyPollMs: 500,
    stopTimeoutMs: 30_000,
    ...spec,
  };
}

/** "2 s" for whole seconds (the production backoff), "250 ms" otherwise (tests' fast settings). */
const duration = (ms) => (ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`);

/** True when GET `url` answers 2xx within a second. */
function answersReady(url) {
  return new Promise((resolve) => {
    const req = request(url, { method: 'GET', timeout: 1_000 }, (res) => {
      res.resume();
      resolve(res.statusCode >= 200 && res.statusCode < 300);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
    req.end();
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function supervise(spec) {
  let stopping = false;
  const units = spec.services.map((service) => ({
    service,
    child: undefined,
    /** Resolves when the current child exits; stop() waits on these. */
    exited: Promise.resolve(),
    startedAt: 0,
    restarts: 0,
    /** Crashes since the service last stayed up `resetAfterMs`: the backoff exponent. */
    quickCrashes: 0,
    restartTimer: undefined,
    logFd: undefined,
  }));

  function openLog(unit) {
    if (!unit.service.log) return 'inherit';
    if (unit.logFd === undefined) {
      mkdirSync(dirname(unit.service.log), { recursive: true });
      unit.logFd = openSync(unit.service.log, 'a');
    }
    return unit.logFd;
  }

  /** Starts the service; resolves with whether it became ready (true when it has no readiness URL). */
  function start(unit) {
    const { service } = unit;
    const out = openLog(unit);
    const [file, ...args] = service.command;
    const child = spawn(file, args, { detached: true, stdio: ['ignore', out, out] });
    unit.child = child;
    unit.startedAt = Date.now();
    let onExit;
    unit.exited = new Promise((resolve) => (onExit = resolve));
    let gone = false;
    const exitedWith = (code, signal, error) => {
      if (gone) return; // 'error' and 'exit' may both fire for one child
      gone = true;
      unit.child = undefined;
      onExit();
      if (!stopping) scheduleRestart(unit, code, signal, error);
    };
    child.once('error', (error) => exitedWith(null, null, error));
    child.once('exit', (code, signal) => exitedWith(code, signal));
    return service.readyUrl ? awaitReady(unit, child) : Promise.resolve(true);
  }

  /** Polls the readiness URL while this child lives; reports the outcome either way. */
  async function awaitReady(unit, child) {
    const { service } = unit;
    const deadline = Date.now() + spec.readyTimeoutMs;
    const alive = () => unit.child === child && !stopping;
    while (alive() && Date.now() < deadline) {
      if (await answersReady(service.readyUrl)) {
        if (!alive()) return false;
        const where = service.log ? `; log ${service.log}` : '';
        if (unit.restarts === 0) say(`${service.name.padEnd(19)} ready  ${service.readyUrl}${where}`);
        else say(`${service.name} ready again after restart ${unit.restarts}`);
        return true;
      }
      await sleep(spec.readyPollMs);
    }
    if (alive()) {
      const where = service.log ? `; see ${service.log}` : '';
      say(
        `${service.name} did not become ready within ${duration(spec.readyTimeoutMs)}${where}; still supervising it`,
      );
    }
    return false;
  }

  function scheduleRestart(unit, code, signal, error) {
    const upMs = Date.now() - unit.startedAt;
    if (upMs >= spec.resetAfterMs) unit.quickCrashes = 0;
    const delayMs = Math.min(spec.restartMaxMs, spec.restartInitialMs * 2 ** unit.quickCrashes);
    unit.quickCrashes += 1;
    unit.restarts += 1;
    const how = error
      ? `could not be started (${error.message})`
      : signal
        ? `exited on signal ${signal}`
        : `exited with status ${code}`;
    say(`${unit.service.name} ${how}; restarting in ${duration(delayMs)} (restart ${unit.restarts})`);
    unit.restartTimer = setTimeout(() => {
      unit.restartTimer = undefined;
      if (!stopping) void start(unit);
    }, delayMs);
  }

  function signalGroup(unit, signal) {
    const pid = unit.child?.pid;
    if (pid === undefined) return;
    try {
      // The whole session's group: the service and anything it started.
      process.kill(-pid, signal);
    } catch {
      try {
        process.kill(pid, signal);
      } catch {
        // Already gone.
      }
    }
  }

  async function stop(signal) {
    if (stopping) return; // npm forwards the terminal's SIGINT a second time: one stop is enough
    stopping = true;
    say(`${signal}: stopping services`);
    for (const unit of units) {
      clearTimeout(unit.restartTimer);
      signalGroup(unit, 'SIGTERM');
    }
    let timer;
    const allExited = Promise.all(units.map((u) => u.exited)).then(() => true);
    const timedOut = new Promise((resolve) => (timer = setTimeout(() => resolve(false), spec.stopTimeoutMs)));
    const clean = await Promise.race([allExited, timedOut]);
    clearTimeout(timer);
    if (!clean) {
      const stuck = units.filter((u) => u.child).map((u) => u.service.name);
      say(`${stuck.join(', ')} did not stop within ${duration(spec.stopTimeoutMs)}; killing`);
      for (const unit of units) signalGroup(unit, 'SIGKILL');
      await allExited;
    }
    for (const unit of units) if (unit.logFd !== undefined) closeSync(unit.logFd);
    say(clean ? (spec.stoppedMessage ?? 'services stopped') : 'services killed');
    process.exit(clean ? 0 : 1);
  }

  // Handlers first: a Ctrl-C during the readiness wait must stop what already started.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => void stop(signal));
  // Should this process die of a bug, its services (in their own sessions) must not outlive it unnoticed.
  process.on('exit', () => {
    for (const unit of units) signalGroup(unit, 'SIGTERM');
  });

  void Promise.all(units.map((unit) => start(unit))).then(() => {
    if (!stopping && spec.readyMessage) say(spec.readyMessage);
  });
}

try {
  supervise(parseSpec(process.argv[2]));
} catch (err) {
  say(err instanceof Error ? err.message : String(err));
  process.exit(2);
}
