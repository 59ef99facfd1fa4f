import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The reliability suite's short mode (`npm run reliability`), as `npm test` runs it: on a Kafka broker, a
 * registry and a redis-server of the suite's own, with the built services. Every experiment must lose nothing,
 * accept no forgery and answer no unintended 5xx; the log check must find no secret, signature or VIN.
 */
interface Row {
  experiment: string;
  lost: number;
  forgeries: number;
  unintended5xx: number;
  verdict: string;
}

const ROOT = join(__dirname, '..', '..');

function runSuite(resultFile: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'reliability', 'run.js')], {
      cwd: ROOT,
      env: { ...process.env, RELIABILITY_SKIP_BUILD: '1', RELIABILITY_RESULT_FILE: resultFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-20_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}

describe('reliability suite, short mode', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ampflow-reliability-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it(
    'loses nothing, accepts no forgery, answers no unintended 5xx and logs no secret',
    async () => {
      const file = join(dir, 'result.json');
      const { code, output } = await runSuite(file);
      const report = JSON.parse(readFileSync(file, 'utf8')) as { rows: Row[] };
      const summary = report.rows.map((r) => ({
        experiment: r.experiment,
        lost: r.lost,
        forgeries: r.forgeries,
        unintended5xx: r.unintended5xx,
        verdict: r.verdict,
      }));
      const expected = summary.map((r) => ({
        ...r,
        lost: 0,
        forgeries: 0,
        unintended5xx: 0,
        verdict: 'pass',
      }));
      expect({ summary, tail: code === 0 ? '' : output.slice(-3_000) }).toEqual({
        summary: expected,
        tail: '',
      });
      expect(summary.map((r) => r.experiment)).toEqual(
        expect.arrayContaining(['fuzz-ingress', 'consumer-kill', 'broker-kill', 'broker-stop', 'log-check']),
      );
    },
    20 * 60_000,
  );
});
