import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { repoRoot } from '../src';

/**
 * deploy/prometheus with Prometheus's own checker: the scrape config, the alert rules and their unit tests
 * (alerts.test.yml). promtool comes from Debian's `prometheus` package, which .ci/run installs when missing.
 */

const root = repoRoot();
const dir = join(root, 'deploy/prometheus');

interface AlertRule {
  alert?: string;
  record?: string;
  expr?: string;
  annotations?: Record<string, string>;
}

function promtool(...args: string[]): { status: number | null; output: string } {
  const result = spawnSync('promtool', args, { cwd: root, encoding: 'utf8', timeout: 60_000 });
  if (result.error && (result.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new Error(
      "promtool is not installed: it comes with Debian's `prometheus` package " +
        '(`apt-get install -y --no-install-recommends prometheus`; .ci/run installs it when missing)',
    );
  }
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

function alertRules(): AlertRule[] {
  const doc = parse(readFileSync(join(dir, 'alerts.yml'), 'utf8')) as { groups: { rules: AlertRule[] }[] };
  return doc.groups.flatMap((group) => group.rules).filter((rule) => rule.alert !== undefined);
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function runbookAnchors(): Set<string> {
  const text = readFileSync(join(root, 'docs/runbook.md'), 'utf8');
  const anchors = [...text.matchAll(/^#{1,6}\s+(.+?)\s*$/gm)].map((match) =>
    match[1]!
      .toLowerCase()
      .replace(/[^\w\- ]/g, '')
      .replace(/ /g, '-'),
  );
  return new Set(anchors);
}

describe('deploy/prometheus', () => {
  it('is a valid Prometheus configuration that loads the alert rules', () => {
    const { status, output } = promtool('check', 'config', join(dir, 'prometheus.yml'));
    expect({ status, output }).toMatchObject({ status: 0 });
    expect(output).toMatch(/1 rule files found/);
  });

  it('has alert rules that promtool accepts', () => {
    const { status, output } = promtool('check', 'rules', join(dir, 'alerts.yml'));
    expect({ status, output }).toMatchObject({ status: 0 });
  });

  it('passes the rule unit tests', () => {
    const { status, output } = promtool('test', 'rules', join(dir, 'alerts.test.yml'));
    expect({ status, output }).toMatchObject({ status: 0 });
  });

  it('gives every alert a summary, a description and a runbook section that exists', () => {
    const anchors = runbookAnchors();
    const rules = alertRules();
    expect(rules.length).toBeGreaterThan(0);
    for (const rule of rules) {
      const annotations = rule.annotations ?? {};
      expect({ alert: rule.alert, summary: typeof annotations.summary }).toEqual({
        alert: rule.alert,
        summary: 'string',
      });
      expect({ alert: rule.alert, description: typeof annotations.description }).toEqual({
        alert: rule.alert,
        description: 'string',
      });
      const match = /^docs\/runbook\.md#(.+)$/.exec(annotations.runbook_url ?? '');
      expect({ alert: rule.alert, anchor: match?.[1] }).toEqual({
        alert: rule.alert,
        anchor: rule.alert!.toLowerCase(),
      });
      expect({ alert: rule.alert, inRunbook: anchors.has(match![1]!) }).toEqual({
        alert: rule.alert,
        inRunbook: true,
      });
    }
  });

  it('tests each rule that names a job firing with both label sets, compose and Kubernetes (PodMonitor)', () => {
    const tests = parse(readFileSync(join(dir, 'alerts.test.yml'), 'utf8')) as {
      tests: {
        input_series: { series: string }[];
        alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[];
      }[];
    };
    // The PodMonitor's targets carry `pod` (and namespace, container, endpoint); compose's do not.
    const firingWith = (kubernetes: boolean) =>
      new Set(
        tests.tests
          .filter((test) => test.input_series.some((s) => /[{,]\s*pod="/.test(s.series)) === kubernetes)
          .flatMap((test) => test.alert_rule_test ?? [])
          .filter((check) => (check.exp_alerts ?? []).length > 0)
          .map((check) => check.alertname),
      );
    const namingJob = alertRules()
      .filter((rule) => /\bjob\s*=~?\s*"/.test(rule.expr ?? ''))
      .map((rule) => rule.alert!);
    expect(namingJob.length).toBeGreaterThan(0);
    const compose = firingWith(false);
    const kubernetes = firingWith(true);
    expect(namingJob.filter((alert) => !compose.has(alert) || !kubernetes.has(alert))).toEqual([]);
  });

  it('has a unit test that expects each alert to fire', () => {
    const tests = parse(readFileSync(join(dir, 'alerts.test.yml'), 'utf8')) as {
      tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[];
    };
    const firing = new Set(
      tests.tests.flatMap((test) =>
        (test.alert_rule_test ?? [])
          .filter((check) => (check.exp_alerts ?? []).length > 0)
          .map((check) => check.alertname),
      ),
    );
    expect(
      alertRules()
        .map((rule) => rule.alert)
        .filter((name) => !firing.has(name!)),
    ).toEqual([]);
  });
});
