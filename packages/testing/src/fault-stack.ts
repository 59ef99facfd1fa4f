import { spawn } from 'node:child_process';
import { readFile, rm, mkdtemp } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './env';

/** Settings of {@link startFaultStack}; every field is optional. */
export interface FaultStackOptions {
  /** Maximum heap of the dedicated broker (a JVM size such as `384m`). Default `384m`. */
  kafkaHeap?: string;
  /** Maximum heap of the dedicated registry. Default `256m`. */
  registryHeap?: string;
  /** How long `stack.sh up` may wait for each component to answer, in seconds. Default 180. */
  startTimeoutSeconds?: number;
  /** Receives every line that stack.sh writes (progress and errors); by default they are kept for error messages only. */
  onLog?: (line: string) => void;
}

/** A Kafka broker and an Apicurio Registry of their own, for tests that kill real processes. */
export interface FaultStack {
  /** `127.0.0.1:<port>` of the dedicated broker. */
  readonly kafkaBrokers: string[];
  /** The Confluent-compatible API base of the dedicated registry (`.../apis/ccompat/v7`). */
  readonly schemaRegistryUrl: string;
  /** Where stack.sh keeps this stack's data, logs and pid files (removed by {@link FaultStack.stop}). */
  readonly stateDir: string;
  /** Sends `signal` (default `SIGKILL`) to the broker and resolves once the process is gone. */
  killKafka(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the broker again on its data and port (`stack.sh up`) and resolves once it answers. */
  startKafka(): Promise<void>;
  /** Sends `signal` (default `SIGKILL`) to the registry and resolves once the process is gone. */
  killRegistry(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the registry again (`stack.sh up`) and resolves once its API answers. */
  startRegistry(): Promise<void>;
  /** Stops both cleanly (`stack.sh down`) and starts them again (`stack.sh up`) on the same data. */
  restartAll(): Promise<void>;
  /** Stops both (`stack.sh down`) and deletes the state directory. Safe to call twice. */
  stop(): Promise<void>;
}

type Component = 'kafka' | 'registry';

const PROCESS_GONE_TIMEOUT_MS = 30_000;

/** A port that nothing listens on right now: the kernel's pick for port 0 on loopback. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}

async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

/** Gone means no such process, or a zombie that nobody reaped yet (it holds no port and no file). */
async function processGone(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // Field 3, after the parenthesised command name (which may itself hold spaces or parentheses).
  return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
}

/**
 * Starts a dedicated Kafka broker and Apicurio Registry (kafkasql storage) through `deploy/local/stack.sh`,
 * with a fresh temporary `AMPFLOW_STATE_DIR` and free loopback ports, so a test can SIGKILL them without
 * touching the stack other tests share. No Redis is started or used (`AMPFLOW_STACK_COMPONENTS=kafka,registry`).
 *
 * Heaps are kept small (broker 384 MiB, registry 256 MiB by default); a start takes some 10-20 s on two cores,
 * so give the calling test a generous timeout. Always call {@link FaultStack.stop} (e.g. in `afterAll`).
 */
export async function startFaultStack(options: FaultStackOptions = {}): Promise<FaultStack> {
  const stateDir = await mkdtemp(join(tmpdir(), 'ampflow-fault-stack-'));
  const [kafkaPort, controllerPort, registryPort] = (await distinctFreePorts(3)) as [number, number, number];
  const script = join(repoRoot(), 'deploy/local/stack.sh');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AMPFLOW_STATE_DIR: stateDir,
    AMPFLOW_STACK_COMPONENTS: 'kafka,registry',
    AMPFLOW_KAFKA_PORT: String(kafkaPort),
    AMPFLOW_KAFKA_CONTROLLER_PORT: String(controllerPort),
    AMPFLOW_REGISTRY_PORT: String(registryPort),
    AMPFLOW_KAFKA_HEAP: options.kafkaHeap ?? '384m',
    AMPFLOW_REGISTRY_HEAP: options.registryHeap ?? '256m',
    AMPFLOW_START_TIMEOUT_S: String(options.startTimeoutSeconds ?? 180),
  };

  const runStack = (command: 'up' | 'down'): Promise<void> =>
    new Promise((resolve, reject) => {
      const child = spawn('bash', [script, command], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      const collect = (chunk: Buffer) => {
        const text = chunk.toString();
        output += text;
        if (options.onLog) for (const line of text.split('\n')) if (line) options.onLog(line);
      };
      child.stdout.on('data', collect);
      child.stderr.on('data', collect);
      child.once('error', reject);
      child.once('close', (code) =>
        code === 0
          ? resolve()
          : reject(
              new Error(
                `stack.sh ${command} (fault stack in ${stateDir}) exited with ${code}:\n${output.slice(-4000)}`,
              ),
            ),
      );
    });

  const kill = async (component: Component, signal: NodeJS.Signals = 'SIGKILL') => {
    const pidFile = join(stateDir, 'pids', `${component}.pid`);
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no valid pid in ${pidFile}`);
    process.kill(pid, signal);
    const deadline = Date.now() + PROCESS_GONE_TIMEOUT_MS;
    while (!(await processGone(pid))) {
      if (Date.now() > deadline)
        throw new Error(`${component} (pid ${pid}) still runs ${PROCESS_GONE_TIMEOUT_MS} ms after ${signal}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  let stopped = false;
  try {
    await runStack('up');
  } catch (err) {
    // Leave no half-started JVM behind.
    await runStack('down').catch(() => undefined);
    await rm(stateDir, { recursive: true, force: true });
    throw err;
  }

  return {
    kafkaBrokers: [`127.0.0.1:${kafkaPort}`],
    schemaRegistryUrl: `http://127.0.0.1:${registryPort}/apis/ccompat/v7`,
    stateDir,
    killKafka: (signal) => kill('kafka', signal),
    // `up` starts only what is not running, then waits until it answers.
    startKafka: () => runStack('up'),
    killRegistry: (signal) => kill('registry', signal),
    startRegistry: () => runStack('up'),
    async restartAll() {
      await runStack('down');
      await runStack('up');
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        await runStack('down');
      } finally {
        await rm(stateDir, { recursive: true, force: true });
      }
    },
  };
}
