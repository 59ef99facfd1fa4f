import { execFile, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freeLoopbackPort, launchRedisServer } from './redis-process';

const run = promisify(execFile);

/** A Redis Cluster of a test's own: three masters, no replicas, on free loopback ports, no persistence. */
export interface RedisClusterProcess {
  /** `redis+cluster://127.0.0.1:<port>,...`: the form `REDIS_URL` takes for a cluster. */
  readonly url: string;
  /** The masters' client ports, in the order of their slot ranges (0 holds slot 0). */
  readonly ports: readonly number[];
  /** The index (into `ports`) of the master holding `slot`. */
  masterOfSlot(slot: number): number;
  /**
   * SIGKILLs master `index` (nothing saved) and starts it again with its `nodes.conf`: it keeps its node id and
   * its slots, and comes back EMPTY, as a master without persistence after a crash. Resolves once every
   * master reports `cluster_state:ok` again. `downMs` keeps it down that long first (default 0).
   */
  restartEmpty(index: number, downMs?: number): Promise<void>;
  /** Number of keys master `index` holds (`DBSIZE`). */
  dbsize(index: number): Promise<number>;
  /** Kills every server and removes their directories. */
  stop(): Promise<void>;
}

export interface RedisClusterOptions {
  /** `cluster-node-timeout` (default 2,000 ms): how soon the others count a dead master as failed. */
  nodeTimeoutMs?: number;
  /** How long the cluster has to form or heal (default 30 s). */
  readyTimeoutMs?: number;
}

const MASTERS = 3;

async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], {
    timeout: 5_000,
  });
  return stdout;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Starts three `redis-server --cluster-enabled yes` on free loopback ports (client and cluster-bus ports both
 * picked free) in a temporary directory, persistence off (`--save ''`, `--appendonly no`), joins them with
 * `redis-cli --cluster create ... --cluster-replicas 0`, and waits for `cluster_state:ok`. Never the shared
 * Redis. The caller must `stop()` it (a dying test process kills the servers too).
 */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisClusterProcess> {
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 2_000;
  const readyTimeoutMs = options.readyTimeoutMs ?? 30_000;
  const root = await mkdtemp(join(tmpdir(), 'ampflow-redis-cluster-'));
  const nodes: Array<{
    port: number;
    busPort: number;
    dir: string;
    child?: ChildProcess;
    exited: Promise<void>;
  }> = [];
  const killAll = () => {
    for (const node of nodes) node.child?.kill('SIGKILL');
  };
  process.once('exit', killAll);

  async function launch(node: (typeof nodes)[number]): Promise<void> {
    const server = await launchRedisServer({
      port: node.port,
      dir: node.dir,
      args: [
        '--cluster-port',
        String(node.busPort),
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        'nodes.conf',
        '--cluster-node-timeout',
        String(nodeTimeoutMs),
      ],
    });
    node.child = server.child;
    node.exited = server.exited;
  }

  async function kill(node: (typeof nodes)[number]): Promise<void> {
    const child = node.child;
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await node.exited;
  }

  /** Every master reports the cluster ok and knows all three masters. */
  async function waitHealthy(): Promise<void> {
    const deadline = Date.now() + readyTimeoutMs;
    let last = '';
    for (;;) {
      try {
        const infos = await Promise.all(nodes.map((node) => cli(node.port, 'CLUSTER', 'INFO')));
        if (infos.every((info) => /cluster_state:ok/.test(info) && /cluster_slots_ok:16384/.test(info)))
          return;
        last = infos.join('\n');
      } catch (error) {
        last = String(error);
      }
      if (Date.now() > deadline) throw new Error(`the Redis Cluster did not become healthy: ${last}`);
      await sleep(100);
    }
  }

  let ranges: Array<{ from: number; to: number; port: number }> = [];
  async function readSlots(): Promise<void> {
    const text = await cli(nodes[0]!.port, 'CLUSTER', 'NODES');
    ranges = [];
    for (const line of text.trim().split('\n')) {
      const fields = line.trim().split(' ');
      const port = Number(/:(\d+)@/.exec(fields[1] ?? '')?.[1]);
      for (const range of fields.slice(8)) {
        const [from, to] = range.split('-').map(Number);
        if (from !== undefined && Number.isInteger(from)) ranges.push({ from, to: to ?? from, port });
      }
    }
  }

  try {
    for (let i = 0; i < MASTERS; i++) {
      const dir = join(root, `node-${i}`);
      await mkdir(dir);
      nodes.push({
        port: await freeLoopbackPort(),
        busPort: await freeLoopbackPort(),
        dir,
        exited: Promise.resolve(),
      });
    }
    await Promise.all(nodes.map(launch));
    await run(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...nodes.map((node) => `127.0.0.1:${node.port}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      { timeout: 30_000 },
    );
    await waitHealthy();
    await readSlots();
  } catch (error) {
    killAll();
    await Promise.all(nodes.map((node) => node.exited));
    process.removeListener('exit', killAll);
    await rm(root, { recursive: true, force: true });
    throw error;
  }

  const ports = nodes.map((node) => node.port);
  return {
    url: `redis+cluster://${ports.map((port) => `127.0.0.1:${port}`).join(',')}`,
    ports,
    masterOfSlot(slot) {
      const range = ranges.find((r) => slot >= r.from && slot <= r.to);
      if (!range) throw new Error(`no master holds slot ${slot}`);
      return ports.indexOf(range.port);
    },
    async restartEmpty(index, downMs = 0) {
      const node = nodes[index];
      if (!node) throw new Error(`no master ${index}`);
      await kill(node);
      if (downMs > 0) await sleep(downMs);
      await launch(node);
      const keys = Number((await cli(node.port, 'DBSIZE')).trim());
      if (keys !== 0)
        throw new Error(`master ${index} came back with ${keys} keys: it was meant to be empty`);
      await waitHealthy();
    },
    async dbsize(index) {
      return Number((await cli(ports[index]!, 'DBSIZE')).trim());
    },
    async stop() {
      await Promise.all(nodes.map(kill));
      process.removeListener('exit', killAll);
      await rm(root, { recursive: true, force: true });
    },
  };
}
