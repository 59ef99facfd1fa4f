import { spawn } from 'node:child_process';
import { readFile, rm, mkdtemp } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { repoRoot } from './env';

/** Settings of {@link startFaultStack}; every field is optional. */
export interface FaultStackOptions {
  /**
   * 1 (default): one broker+controller node. 3: the replicated cluster of `stack.sh` (`AMPFLOW_KAFKA_BROKERS=3`):
   * brokers 1-3 and a KRaft controller of their own, topics replicated 3 times with min.insync.replicas=2.
   */
  brokers?: 1 | 3;
  /** Whether to start the registry too. Default true. */
  registry?: boolean;
  /** Maximum heap of each dedicated broker (a JVM size such as `384m`). Default `384m`. */
  kafkaHeap?: string;
  /** Maximum heap of the dedicated registry. Default `256m`. */
  registryHeap?: string;
  /** How long `stack.sh up` may wait for each component to answer, in seconds. Default 180. */
  startTimeoutSeconds?: number;
  /** Receives every line that stack.sh writes (progress and errors); by default they are kept for error messages only. */
  onLog?: (line: string) => void;
}

/** One partition as the cluster's metadata describes it (node ids: the brokers' numbers, 1-3). */
export interface PartitionState {
  partition: number;
  /** The node id of the leader; -1 while the partition has none. */
  leader: number;
  replicas: number[];
  isr: number[];
}

/** A Kafka broker (or three) and an Apicurio Registry of their own, for tests that kill real processes. */
export interface FaultStack {
  /** `127.0.0.1:<port>` of each dedicated broker; broker n (node id n) is `kafkaBrokers[n - 1]`. */
  readonly kafkaBrokers: string[];
  /** The Confluent-compatible API base of the dedicated registry (`.../apis/ccompat/v7`). */
  readonly schemaRegistryUrl: string;
  /** Where stack.sh keeps this stack's data, logs and pid files (removed by {@link FaultStack.stop}). */
  readonly stateDir: string;
  /** Sends `signal` (default `SIGKILL`) to the broker (every broker) and resolves once the processes are gone. */
  killKafka(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the broker(s) again on their data and ports (`stack.sh up`) and resolves once they answer. */
  startKafka(): Promise<void>;
  /** Three brokers only: sends `signal` (default `SIGKILL`) to broker `id` (1-3); resolves once it is gone. */
  killBroker(id: number, signal?: NodeJS.Signals): Promise<void>;
  /** Three brokers only: starts broker `id` (1-3) again on its data and resolves once the controller let it in. */
  startBroker(id: number): Promise<void>;
  /** The partitions of `topic` (leader, replicas, in-sync replicas), asked of whichever broker answers. */
  describePartitions(topic: string): Promise<PartitionState[]>;
  /** The node id of the leader of `topic`'s `partition` (-1: none right now). */
  leaderOf(topic: string, partition: number): Promise<number>;
  /** Sends `signal` (default `SIGKILL`) to the registry and resolves once the process is gone. */
  killRegistry(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the registry again (`stack.sh up`) and resolves once its API answers. */
  startRegistry(): Promise<void>;
  /** What `stack.sh status` prints: one line per component (per node of the replicated cluster). */
  status(): Promise<string>;
  /** Stops both cleanly (`stack.sh down`) and starts them again (`stack.sh up`) on the same data. */
  restartAll(): Promise<void>;
  /** Stops both (`stack.sh down`) and deletes the state directory. Safe to call twice. */
  stop(): Promise<void>;
}

/** The pid file names of stack.sh: `kafka` (single node), `kafka-1`..`kafka-3`, `registry`. */
type Component = string;

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

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** `count` consecutive free ports (the replicated cluster's brokers and controller sit on base, +1, +2, +3). */
async function consecutiveFreePorts(count: number): Promise<number[]> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = await freePort();
    if (base + count - 1 > 65_535) continue;
    const rest = Array.from({ length: count - 1 }, (_, i) => base + i + 1);
    if ((await Promise.all(rest.map(portFree))).every(Boolean)) return [base, ...rest];
  }
  throw new Error(`no ${count} consecutive free ports found on 127.0.0.1`);
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
 * Starts a dedicated Kafka broker (or, with `brokers: 3`, a replicated cluster of three brokers and a KRaft
 * controller) and Apicurio Registry (kafkasql storage) through `deploy/local/stack.sh`,
 * with a fresh temporary `AMPFLOW_STATE_DIR` and free loopback ports, so a test can SIGKILL them without
 * touching the stack other tests share. No Redis is started or used (`AMPFLOW_STACK_COMPONENTS=kafka,registry`).
 *
 * Heaps are kept small (each broker 384 MiB, the replicated cluster's controller 256 MiB, registry 256 MiB by
 * default); a start takes some 10-20 s on two cores (the replicated cluster 30-60 s), so give the calling test a
 * generous timeout. Always call {@link FaultStack.stop} (e.g. in `afterAll`).
 */
export async function startFaultStack(options: FaultStackOptions = {}): Promise<FaultStack> {
  const brokerCount = options.brokers ?? 1;
  const withRegistry = options.registry ?? true;
  const stateDir = await mkdtemp(join(tmpdir(), 'ampflow-fault-stack-'));
  let kafkaPorts: number[];
  let controllerPort: number;
  let registryPort: number;
  if (brokerCount === 3) {
    const block = await consecutiveFreePorts(4);
    kafkaPorts = block.slice(0, 3);
    controllerPort = block[3]!;
    const others = await distinctFreePorts(5);
    registryPort = others.find((p) => !block.includes(p))!;
  } else {
    const [kafkaPort, controller, registry] = (await distinctFreePorts(3)) as [number, number, number];
    kafkaPorts = [kafkaPort];
    controllerPort = controller;
    registryPort = registry;
  }
  const script = join(repoRoot(), 'deploy/local/stack.sh');
  const components = withRegistry ? 'kafka,registry' : 'kafka';
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AMPFLOW_STATE_DIR: stateDir,
    AMPFLOW_STACK_COMPONENTS: components,
    AMPFLOW_KAFKA_BROKERS: String(brokerCount),
    AMPFLOW_KAFKA_PORT: String(kafkaPorts[0]),
    AMPFLOW_KAFKA_CONTROLLER_PORT: String(controllerPort),
    AMPFLOW_REGISTRY_PORT: String(registryPort),
    AMPFLOW_KAFKA_HEAP: options.kafkaHeap ?? '384m',
    AMPFLOW_REGISTRY_HEAP: options.registryHeap ?? '256m',
    AMPFLOW_START_TIMEOUT_S: String(options.startTimeoutSeconds ?? 180),
  };
  delete env.AMPFLOW_KAFKA_NODES;
  const kafkaBrokers = kafkaPorts.map((port) => `127.0.0.1:${port}`);

  /** Runs `stack.sh <command>`; resolves with what it wrote to stdout. */
  const runStack = (command: 'up' | 'down' | 'status', extraEnv: NodeJS.ProcessEnv = {}): Promise<string> =>
    new Promise((resolve, reject) => {
      const child = spawn('bash', [script, command], {
        env: { ...env, ...extraEnv },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      let stdout = '';
      const collect = (chunk: Buffer) => {
        const text = chunk.toString();
        output += text;
        if (options.onLog) for (const line of text.split('\n')) if (line) options.onLog(line);
      };
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        collect(chunk);
      });
      child.stderr.on('data', collect);
      child.once('error', reject);
      child.once('close', (code) =>
        code === 0
          ? resolve(stdout)
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

  const checkBroker = (id: number) => {
    if (brokerCount !== 3) throw new Error('killBroker/startBroker need a stack started with brokers: 3');
    if (![1, 2, 3].includes(id)) throw new Error(`no broker ${id} (1-3)`);
  };

  const describePartitions = async (topic: string): Promise<PartitionState[]> => {
    // A client of its own per call: it finds a live broker among the seeds, whichever are down.
    const admin = new Kafka({
      brokers: kafkaBrokers,
      clientId: 'fault-stack',
      logLevel: logLevel.NOTHING,
      connectionTimeout: 2_000,
      retry: { retries: 8, initialRetryTime: 100, maxRetryTime: 1_000 },
    }).admin();
    await admin.connect();
    try {
      const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
      return (topics[0]?.partitions ?? [])
        .map((p) => ({ partition: p.partitionId, leader: p.leader, replicas: p.replicas, isr: p.isr }))
        .sort((a, b) => a.partition - b.partition);
    } finally {
      await admin.disconnect();
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
    kafkaBrokers,
    schemaRegistryUrl: `http://127.0.0.1:${registryPort}/apis/ccompat/v7`,
    stateDir,
    killKafka: async (signal) => {
      if (brokerCount === 1) return kill('kafka', signal);
      // The ones not killed already (by killBroker).
      for (const id of [1, 2, 3]) {
        const pid = Number(
          (await readFile(join(stateDir, 'pids', `kafka-${id}.pid`), 'utf8').catch(() => '')).trim(),
        );
        if (pid > 0 && !(await processGone(pid))) await kill(`kafka-${id}`, signal);
      }
    },
    // `up` starts only what is not running, then waits until it answers.
    startKafka: async () => {
      await runStack('up');
    },
    killBroker: async (id, signal) => {
      checkBroker(id);
      await kill(`kafka-${id}`, signal);
    },
    startBroker: async (id) => {
      checkBroker(id);
      await runStack('up', { AMPFLOW_STACK_COMPONENTS: 'kafka', AMPFLOW_KAFKA_NODES: String(id) });
    },
    describePartitions,
    async leaderOf(topic, partition) {
      const state = (await describePartitions(topic)).find((p) => p.partition === partition);
      if (!state) throw new Error(`${topic} has no partition ${partition}`);
      return state.leader;
    },
    killRegistry: (signal) => kill('registry', signal),
    startRegistry: async () => {
      await runStack('up');
    },
    status: () => runStack('status'),
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
