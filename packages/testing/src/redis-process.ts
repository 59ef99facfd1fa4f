import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A `redis-server` of a test's own, which the test may flush, kill and restart. */
export interface RedisProcess {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** Kills the server (default SIGKILL: no shutdown, nothing saved) and waits for it to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Kills it if it still runs and starts it again on the same port; it comes back empty (no persistence). */
  restart(): Promise<void>;
  /** `FLUSHALL` on this server only. */
  flushAll(): Promise<void>;
  /** Kills the server and removes its directory. */
  stop(): Promise<void>;
}

export interface RedisProcessOptions {
  /** The server binary (default `redis-server` from the PATH). */
  binary?: string;
  /** How long the server has to answer PING after a start (default 10 s). */
  startTimeoutMs?: number;
}

/** A loopback port nothing listens on right now (the kernel's pick for port 0). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Sends one inline command and resolves with the first reply line (a raw socket: no client state to reset). */
function command(port: number, line: string, timeoutMs = 1_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let reply = '';
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`redis on ${port} did not answer ${line}`)));
    socket.once('connect', () => socket.write(`${line}\r\n`));
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      const end = reply.indexOf('\r\n');
      if (end >= 0) {
        socket.destroy();
        resolve(reply.slice(0, end));
      }
    });
    socket.once('error', reject);
  });
}

/**
 * Starts a dedicated `redis-server` on a free loopback port with persistence off (`--save ''`,
 * `--appendonly no`) in a temporary directory, so a restart brings it back empty, as a Redis without
 * persistence comes back after a crash. Tests that flush or kill Redis use this, never the shared one.
 */
export async function startRedisProcess(options: RedisProcessOptions = {}): Promise<RedisProcess> {
  const binary = options.binary ?? 'redis-server';
  const startTimeoutMs = options.startTimeoutMs ?? 10_000;
  const dir = await mkdtemp(join(tmpdir(), 'ampflow-redis-'));
  const port = await freeLoopbackPort();
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  // A test run that dies must not leave servers behind.
  const killOnExit = () => child?.kill('SIGKILL');
  process.once('exit', killOnExit);

  async function launch(): Promise<void> {
    const server = await launchRedisServer({ binary, port, dir, startTimeoutMs });
    child = server.child;
    exited = server.exited;
  }

  async function kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (child && child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  }

  await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    kill,
    async restart() {
      await kill('SIGKILL');
      await launch();
    },
    async flushAll() {
      const reply = await command(port, 'FLUSHALL');
      if (reply !== '+OK') throw new Error(`FLUSHALL answered ${reply}`);
    },
    async stop() {
      await kill('SIGKILL');
      process.removeListener('exit', killOnExit);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A `redis-server` process just started by {@link launchRedisServer}, answering PING. */
export interface LaunchedRedisServer {
  readonly child: ChildProcess;
  /** Resolves once the process is gone. */
  readonly exited: Promise<void>;
}

/**
 * Spawns `redis-server` on a loopback `port` with persistence off (`--save ''`, `--appendonly no`) in `dir`, plus
 * `args` (e.g. the cluster settings), and resolves once it answers PING; rejects with its last output if it exits
 * or stays silent for `startTimeoutMs` (default 10 s).
 */
export async function launchRedisServer(options: {
  port: number;
  dir: string;
  args?: readonly string[];
  binary?: string;
  startTimeoutMs?: number;
}): Promise<LaunchedRedisServer> {
  const { port, dir } = options;
  const startTimeoutMs = options.startTimeoutMs ?? 10_000;
  let output = '';
  const proc = spawn(
    options.binary ?? 'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      ...(options.args ?? []),
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      '--protected-mode',
      'no',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-4_000);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  let gone = false;
  const exited = new Promise<void>((resolve) => {
    proc.once('exit', () => {
      gone = true;
      resolve();
    });
    proc.once('error', (err) => {
      gone = true;
      output += String(err);
      resolve();
    });
  });
  const deadline = Date.now() + startTimeoutMs;
  for (;;) {
    if (gone) throw new Error(`redis-server on port ${port} exited at start: ${output}`);
    try {
      if ((await command(port, 'PING')) === '+PONG') return { child: proc, exited };
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`redis-server on port ${port} did not answer within ${startTimeoutMs} ms: ${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
