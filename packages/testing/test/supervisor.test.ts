import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, repoRoot } from '../src';

/**
 * scripts/supervise.mjs (what `npm start` runs) against real child processes: tiny `node -e` programs that
 * record their starts and signals in files, crash with a status, or get SIGKILLed by the test.
 */

interface ServiceSpec {
  name: string;
  command: string[];
  log?: string;
  readyUrl?: string;
}

let dir: string;
const supervisors: ChildProcess[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ampflow-supervisor-'));
});

afterEach(() => {
  for (const s of supervisors.splice(0)) if (s.exitCode === null && s.signalCode === null) s.kill('SIGKILL');
  // Children live in their own sessions: a failed test must not leave them behind.
  for (const pid of allPids()) kill(pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const node = (code: string, ...args: string[]) => [process.execPath, '-e', code, ...args];
const file = (name: string) => join(dir, name);
const lines = (name: string) =>
  existsSync(file(name)) ? readFileSync(file(name), 'utf8').split('\n').filter(Boolean) : [];

/** Records `start <pid> <ms>` and exits with `status` at once. */
const crasher = (name: string, status: number) =>
  node(
    `require('fs').appendFileSync(process.argv[1], 'start ' + process.pid + ' ' + Date.now() + '\\n');
     process.exit(${status});`,
    file(name),
  );

/** Records its start, and on SIGTERM records `term <pid>` and exits 0 after `drainMs` (like a draining service). */
const longLived = (name: string, drainMs = 300, ignoreTerm = false) =>
  node(
    `const fs = require('fs'); const f = process.argv[1];
     fs.appendFileSync(f, 'start ' + process.pid + ' ' + Date.now() + '\\n');
     process.on('SIGTERM', () => {
       fs.appendFileSync(f, 'term ' + process.pid + '\\n');
       if (!${ignoreTerm}) setTimeout(() => process.exit(0), ${drainMs});
     });
     setInterval(() => {}, 1000);`,
    file(name),
  );

/** A service that answers its readiness URL on `port`. */
const readyServer = (name: string, port: number) =>
  node(
    `require('fs').appendFileSync(process.argv[1], 'start ' + process.pid + ' ' + Date.now() + '\\n');
     require('http').createServer((_q, s) => s.end('ok')).listen(${port}, '127.0.0.1');`,
    file(name),
  );

function starts(name: string): { pid: number; at: number }[] {
  return lines(name)
    .filter((l) => l.startsWith('start '))
    .map((l) => {
      const [, pid, at] = l.split(' ');
      return { pid: Number(pid), at: Number(at) };
    });
}

function allPids(): number[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.events'))
    .flatMap((f) => starts(f).map((s) => s.pid));
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function runSupervisor(spec: { services: ServiceSpec[] } & Record<string, unknown>) {
  const child = spawn(process.execPath, [join(repoRoot(), 'scripts/supervise.mjs'), JSON.stringify(spec)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  supervisors.push(child);
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    exited,
    stderr: () => stderr,
    messages: () => stderr.split('\n').filter(Boolean),
    waitFor: (pattern: RegExp, timeoutMs = 10_000) =>
      eventually(() => pattern.test(stderr), `${pattern} in:\n${stderr}`, timeoutMs, 20),
  };
}

describe('the platform supervisor (scripts/supervise.mjs)', () => {
  it('restarts a crashing service with doubling, capped backoff and says so, leaving its siblings alone', async () => {
    const sup = runSupervisor({
      services: [
        { name: 'crasher', command: crasher('crasher.events', 3) },
        { name: 'steady', command: longLived('steady.events') },
      ],
      restartInitialMs: 100,
      restartMaxMs: 400,
      resetAfterMs: 10_000,
    });
    await sup.waitFor(/restart 6\)/);

    const restarts = sup.messages().filter((m) => m.includes('crasher exited'));
    expect(restarts.slice(0, 6)).toEqual([
      '[run] crasher exited with status 3; restarting in 100 ms (restart 1)',
      '[run] crasher exited with status 3; restarting in 200 ms (restart 2)',
      '[run] crasher exited with status 3; restarting in 400 ms (restart 3)',
      '[run] crasher exited with status 3; restarting in 400 ms (restart 4)',
      '[run] crasher exited with status 3; restarting in 400 ms (restart 5)',
      '[run] crasher exited with status 3; restarting in 400 ms (restart 6)',
    ]);
    // The gaps between starts are at least the announced delays: no restart storm.
    const at = starts('crasher.events').map((s) => s.at);
    const gaps = at.slice(1, 6).map((t, i) => t - at[i]!);
    const announced = [100, 200, 400, 400, 400];
    gaps.forEach((gap, i) => expect(gap).toBeGreaterThanOrEqual(announced[i]! - 5));

    // Over a further second at the 400 ms cap, at most three more starts.
    const before = starts('crasher.events').length;
    await new Promise((r) => setTimeout(r, 1_000));
    expect(starts('crasher.events').length - before).toBeLessThanOrEqual(3);

    // The sibling was never stopped or restarted.
    const steady = starts('steady.events');
    expect(steady).toHaveLength(1);
    expect(alive(steady[0]!.pid)).toBe(true);
    expect(sup.stderr()).not.toContain('steady exited');
  });

  it('restarts a SIGKILLed service, and resets the backoff once it stayed up long enough', async () => {
    const sup = runSupervisor({
      services: [{ name: 'victim', command: longLived('victim.events') }],
      restartInitialMs: 100,
      restartMaxMs: 5_000,
      resetAfterMs: 1_000,
    });
    const nthStart = async (n: number) => {
      await eventually(() => starts('victim.events').length >= n, `start ${n}`, 10_000, 20);
      return starts('victim.events')[n - 1]!.pid;
    };

    kill(await nthStart(1), 'SIGKILL');
    await sup.waitFor(/restart 1\)/);
    // Killed again at once: a quick crash doubles the delay.
    kill(await nthStart(2), 'SIGKILL');
    await sup.waitFor(/restart 2\)/);
    // Up for longer than resetAfterMs: the next crash is a fresh one.
    const third = await nthStart(3);
    await new Promise((r) => setTimeout(r, 1_300));
    kill(third, 'SIGKILL');
    await sup.waitFor(/restart 3\)/);
    await nthStart(4);

    expect(sup.messages().filter((m) => m.includes('victim exited'))).toEqual([
      '[run] victim exited on signal SIGKILL; restarting in 100 ms (restart 1)',
      '[run] victim exited on signal SIGKILL; restarting in 200 ms (restart 2)',
      '[run] victim exited on signal SIGKILL; restarting in 100 ms (restart 3)',
    ]);
  });

  it('stops every service with one SIGTERM on SIGINT then SIGTERM, restarts nothing, and exits 0', async () => {
    const sup = runSupervisor({
      services: [
        { name: 'a', command: longLived('a.events', 400) },
        { name: 'b', command: longLived('b.events', 400), log: file('logs/b.log') },
        // Crashes at once, then waits out a long backoff when the stop comes: that restart must not happen.
        { name: 'c', command: crasher('c.events', 1) },
      ],
      restartInitialMs: 5_000,
      stoppedMessage: 'all stopped',
    });
    await eventually(
      () => starts('a.events').length === 1 && starts('b.events').length === 1,
      'a and b started',
    );
    await sup.waitFor(/c exited with status 1; restarting in 5 s \(restart 1\)/);
    const pids = [...starts('a.events'), ...starts('b.events')].map((s) => s.pid);

    // npm and the terminal both deliver Ctrl-C; then a SIGTERM while the services are still draining.
    sup.child.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 50));
    sup.child.kill('SIGINT');
    sup.child.kill('SIGTERM');
    expect(await sup.exited).toBe(0);

    for (const name of ['a.events', 'b.events']) {
      expect(lines(name).filter((l) => l.startsWith('term '))).toHaveLength(1);
    }
    for (const pid of pids) expect(alive(pid)).toBe(false);
    expect(sup.messages().filter((m) => m.includes('stopping services'))).toEqual([
      '[run] SIGINT: stopping services',
    ]);
    expect(sup.messages().at(-1)).toBe('[run] all stopped');
    // The services' output went to their log file, created with its directory.
    expect(existsSync(file('logs/b.log'))).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    expect(starts('c.events')).toHaveLength(1);
  });

  it('kills a service that ignores SIGTERM after the stop timeout and exits non-zero', async () => {
    const sup = runSupervisor({
      services: [{ name: 'stubborn', command: longLived('stubborn.events', 0, true) }],
      stopTimeoutMs: 500,
    });
    await eventually(() => starts('stubborn.events').length === 1, 'started');
    const { pid } = starts('stubborn.events')[0]!;
    const stopAt = Date.now();
    sup.child.kill('SIGTERM');
    expect(await sup.exited).toBe(1);
    expect(Date.now() - stopAt).toBeGreaterThanOrEqual(450);
    expect(alive(pid)).toBe(false);
    expect(sup.stderr()).toContain('[run] stubborn did not stop within 500 ms; killing');
  });

  it('reports readiness, and a service that never becomes ready is reported but not stopped', async () => {
    const [readyPort, silentPort] = [await freePort(), await freePort()];
    const sup = runSupervisor({
      services: [
        {
          name: 'up',
          command: readyServer('up.events', readyPort),
          readyUrl: `http://127.0.0.1:${readyPort}/readyz`,
        },
        {
          name: 'silent',
          command: longLived('silent.events'),
          readyUrl: `http://127.0.0.1:${silentPort}/readyz`,
        },
      ],
      readyTimeoutMs: 800,
      readyPollMs: 50,
      readyMessage: 'all started',
    });
    await sup.waitFor(/all started/);
    expect(sup.stderr()).toMatch(new RegExp(`\\[run\\] up +ready  http://127.0.0.1:${readyPort}/readyz`));
    expect(sup.stderr()).toContain('[run] silent did not become ready within 800 ms; still supervising it');
    const [up, silent] = [starts('up.events'), starts('silent.events')];
    expect(up).toHaveLength(1);
    expect(silent).toHaveLength(1);
    expect(alive(up[0]!.pid) && alive(silent[0]!.pid)).toBe(true);
    expect(sup.child.exitCode).toBeNull();

    // After a restart, readiness is reported again.
    kill(up[0]!.pid, 'SIGKILL');
    await sup.waitFor(/up ready again after restart 1/);
    sup.child.kill('SIGTERM');
    expect(await sup.exited).toBe(0);
  });
});
