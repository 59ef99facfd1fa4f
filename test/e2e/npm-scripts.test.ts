import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The root package.json's commands that run ampflow's code start it on Node.js 22 or newer, not on whatever
 * `node` runs npm: each goes through a script that sources scripts/node-runtime.sh (scripts/with-node.sh for the
 * tools). Here, not in a unit project, because it reads the repository and runs processes.
 */

const root = join(__dirname, '../..');
const scripts = (
  JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
).scripts;

/** The commands the README offers that run services, tests or tools on Node. */
const RUNS_NODE = ['start', 'test', 'bench', 'reliability', 'demo', 'ops', 'docs:topics'];

describe('root package.json scripts', () => {
  it.each(RUNS_NODE)('%s runs through a script that sources scripts/node-runtime.sh', (name) => {
    const command = scripts[name];
    const script = /^bash (scripts\/[\w-]+\.sh)(\s|$)/.exec(command ?? '')?.[1];
    expect({ name, command, script: script ?? 'none' }).toEqual({
      name,
      command,
      script: expect.any(String),
    });
    expect(readFileSync(join(root, script!), 'utf8')).toMatch(/^source (scripts\/|.*\/)node-runtime\.sh"?$/m);
  });
});

describe('scripts/with-node.sh', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ampflow-with-node-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const run = (...args: string[]) =>
    spawnSync('bash', ['scripts/with-node.sh', ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });

  it('builds each --build project, then runs the command with its arguments and exit status', () => {
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { outDir: 'dist', module: 'commonjs', strict: true },
        files: ['main.ts'],
      }),
    );
    writeFileSync(
      join(dir, 'main.ts'),
      [
        'declare const process: { argv: string[]; exitCode: number };',
        'console.log(JSON.stringify(process.argv.slice(2)));',
        'process.exitCode = 3;',
      ].join('\n'),
    );

    const result = run('--build', dir, 'node', join(dir, 'dist/main.js'), 'dlq', '--json');

    expect({ status: result.status, stdout: result.stdout, stderr: result.stderr }).toEqual({
      status: 3,
      stdout: '["dlq","--json"]\n',
      stderr: '',
    });
  });

  it('stops at a failing build without running the command', () => {
    const result = run('--build', join(dir, 'missing'), 'node', '-e', 'console.log("ran")');

    expect(result.status).not.toBe(0);
    expect(result.stdout).not.toMatch(/ran/);
  });

  it('refuses to run without a command', () => {
    const result = run();

    expect({ status: result.status, stderr: result.stderr }).toEqual({
      status: 2,
      stderr: expect.stringMatching(/^usage: bash scripts\/with-node\.sh/),
    });
  });
});
