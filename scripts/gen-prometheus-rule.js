// Regenerates deploy/k8s/base/prometheus-rule.yaml from deploy/prometheus/alerts.yml: `node scripts/gen-prometheus-rule.js`.
// The Prometheus Operator loads rules from PrometheusRule objects, not files; test/e2e/k8s-monitoring.test.ts fails
// when the two differ.
const { readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const prettier = require('prettier');
const { parse, stringify } = require('yaml');

const root = join(__dirname, '..');
const target = join(root, 'deploy/k8s/base/prometheus-rule.yaml');

async function main() {
  const { groups } = parse(readFileSync(join(root, 'deploy/prometheus/alerts.yml'), 'utf8'));
  const header = [
    '# Generated from deploy/prometheus/alerts.yml by `node scripts/gen-prometheus-rule.js`: edit the rules there.',
    '# The alert rules for the Prometheus Operator, which loads PrometheusRule objects; podmonitor.yaml scrapes the',
    '# services with the job labels these rules select.',
  ].join('\n');
  const rule = {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: { name: 'ampflow', labels: { 'app.kubernetes.io/name': 'ampflow' } },
    spec: { groups },
  };
  const text = `${header}\n${stringify(rule, { lineWidth: 0 })}`;
  const options = { ...(await prettier.resolveConfig(target)), filepath: target };
  writeFileSync(target, await prettier.format(text, options));
  console.log(`wrote ${target}`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
