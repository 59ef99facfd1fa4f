import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * deploy/node-flags is the one list of node flags the services run with (docs/memory.md). Every launcher reads
 * it, except the image, which cannot read a file into its environment: its `ENV NODE_OPTIONS` (which the
 * Kubernetes manifests' `node services/<name>/dist/main.js` inherits) must say the same.
 */

const root = join(__dirname, '../..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');
const flagsIn = (text: string) => text.replace(/#.*/g, '').split(/\s+/).filter(Boolean);

describe('node flags of the services', () => {
  const flags = flagsIn(read('deploy/node-flags'));

  it('lists only node options (no shell syntax), and names the heap bounds it leaves off by default', () => {
    for (const flag of flags) expect(flag).toMatch(/^--[a-z][a-z0-9-]*(=[\w.,-]+)?$/);
    const text = read('deploy/node-flags');
    expect(text).toMatch(/^# --max-semi-space-size=8$/m);
    expect(text).toMatch(/^# --max-old-space-size=512$/m);
  });

  it('the image sets the same flags as NODE_OPTIONS', () => {
    const line = /^ENV NODE_OPTIONS="([^"]*)"$/m.exec(read('deploy/docker/Dockerfile'));
    expect(flagsIn(line?.[1] ?? 'missing')).toEqual(flags);
  });

  it('npm start and the benchmarks read deploy/node-flags', () => {
    expect(read('scripts/run-platform.sh')).toContain('readFileSync("deploy/node-flags"');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const bench = require(join(root, 'bench/lib/processes.js')) as {
      serviceNodeFlags(env: Record<string, string | undefined>): string[];
    };
    expect(bench.serviceNodeFlags({})).toEqual(flags);
    expect(bench.serviceNodeFlags({ AMPFLOW_NODE_FLAGS: '' })).toEqual([]);
  });

  it('the Kubernetes manifests leave NODE_OPTIONS to the image', () => {
    for (const file of [
      'configmap.yaml',
      'ingress.yaml',
      'normalizer.yaml',
      'session-aggregator.yaml',
      'notifier.yaml',
      'console.yaml',
    ]) {
      expect({ file, setsNodeOptions: read(`deploy/k8s/base/${file}`).includes('NODE_OPTIONS') }).toEqual({
        file,
        setsNodeOptions: false,
      });
    }
  });
});
