import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/**
 * scripts/setup.sh's install step with the real npm, on a throw-away project: `npm ci` first, `npm install` (which
 * rewrites the lockfile) only when npm ci says package.json and the lockfile disagree, and a stop with the lockfile
 * untouched on any other failure. The registry is a closed loopback port, so a download fails at once; `npx`
 * (the build) is a stub that only records its call. Here, not in a unit project, because it runs processes.
 */

const root = join(__dirname, '../..');
const realNpm = spawnSync('bash', ['-c', 'command -v npm'], { encoding: 'utf8' }).stdout.trim();

interface Run {
  status: number | null;
  stderr: string;
  calls: string[];
  lockfile: string;
}

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ampflow-setup-'));
  mkdirSync(join(dir, 'scripts'));
  for (const script of ['setup.sh', 'node-runtime.sh']) {
    copyFileSync(join(root, 'scripts', script), join(dir, 'scripts', script));
  }
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'npm'), `#!/usr/bin/env bash\necho "npm $1" >>"$CALLS"\nexec "${realNpm}" "$@"\n`);
  writeFileSync(join(bin, 'npx'), '#!/usr/bin/env bash\necho "npx $*" >>"$CALLS"\n');
  chmodSync(join(bin, 'npm'), 0o755);
  chmodSync(join(bin, 'npx'), 0o755);
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

function project(dependencies: Record<string, string>, locked: Record<string, unknown>): void {
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'probe', version: '1.0.0', private: true, dependencies }),
  );
  writeFileSync(
    join(dir, 'package-lock.json'),
    JSON.stringify({
      name: 'probe',
      version: '1.0.0',
      lockfileVersion: 3,
      requires: true,
      packages: {
        '': { name: 'probe', version: '1.0.0', dependencies: locked.dependencies },
        ...locked.packages!,
      },
    }),
  );
}

/** A package in the project's own tree, installed as a `file:` dependency without a registry. */
function localDependency(): void {
  mkdirSync(join(dir, 'local-dep'));
  writeFileSync(join(dir, 'local-dep/package.json'), JSON.stringify({ name: 'local-dep', version: '1.0.0' }));
}

function setup(): Run {
  const calls = join(dir, 'calls.log');
  const result = spawnSync('bash', [join(dir, 'scripts/setup.sh')], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 60_000,
    env: {
      HOME: dir,
      // This test's Node (22 or newer) first: node-runtime.sh then fetches nothing.
      PATH: [join(dir, 'bin'), dirname(process.execPath), process.env.PATH].join(':'),
      CALLS: calls,
      npm_config_registry: 'http://127.0.0.1:1/',
      npm_config_cache: join(dir, 'npm-cache'),
      // No user or global npmrc: nothing may point npm at a proxy or another registry.
      npm_config_userconfig: join(dir, 'no-npmrc'),
      npm_config_globalconfig: join(dir, 'no-global-npmrc'),
      npm_config_fetch_retries: '0',
      npm_config_update_notifier: 'false',
    },
  });
  return {
    status: result.status,
    stderr: result.stderr,
    calls: existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n') : [],
    lockfile: readFileSync(join(dir, 'package-lock.json'), 'utf8'),
  };
}

describe('scripts/setup.sh', () => {
  it('stops with the lockfile untouched when npm ci fails for another reason than a mismatch (no registry)', () => {
    const leftPad = {
      version: '1.3.0',
      resolved: 'https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz',
    };
    project(
      { 'left-pad': '1.3.0' },
      {
        dependencies: { 'left-pad': '1.3.0' },
        packages: { 'node_modules/left-pad': leftPad },
      },
    );
    const before = readFileSync(join(dir, 'package-lock.json'), 'utf8');

    const run = setup();

    expect({ status: run.status, calls: run.calls }).toEqual({ status: 1, calls: ['npm ci'] });
    expect(run.stderr).toMatch(/ECONNREFUSED/);
    expect(run.stderr).toMatch(/package-lock\.json is left as it is/);
    expect(run.lockfile).toBe(before);
    expect(existsSync(join(dir, 'node_modules/.ampflow-node-abi'))).toBe(false);
  });

  it('runs npm install, which updates the lockfile, when npm ci says package.json and the lockfile disagree', () => {
    localDependency();
    // package.json has a dependency that the lockfile lacks (a file: one, so no registry is needed).
    project({ 'local-dep': 'file:local-dep' }, { packages: {} });

    const run = setup();

    expect({ status: run.status, calls: run.calls }).toEqual({
      status: 0,
      calls: ['npm ci', 'npm install', 'npx --no-install tsc -b'],
    });
    expect(run.stderr).toMatch(/Missing: local-dep@1\.0\.0 from lock file/);
    expect(run.stderr).toMatch(/package\.json and package-lock\.json disagree; running npm install/);
    expect(JSON.parse(run.lockfile).packages['node_modules/local-dep']).toMatchObject({ link: true });
  });

  it('installs with npm ci alone when the lockfile matches, then builds', () => {
    localDependency();
    project(
      { 'local-dep': 'file:local-dep' },
      {
        dependencies: { 'local-dep': 'file:local-dep' },
        packages: {
          'local-dep': { version: '1.0.0' },
          'node_modules/local-dep': { resolved: 'local-dep', link: true },
        },
      },
    );
    const before = readFileSync(join(dir, 'package-lock.json'), 'utf8');

    const run = setup();

    expect({ status: run.status, calls: run.calls }).toEqual({
      status: 0,
      calls: ['npm ci', 'npx --no-install tsc -b'],
    });
    expect(run.lockfile).toBe(before);
    expect(readFileSync(join(dir, 'node_modules/.ampflow-node-abi'), 'utf8').trim()).toBe(
      process.versions.modules,
    );
  });
});
