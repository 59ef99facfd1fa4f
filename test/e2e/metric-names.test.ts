import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { createMetricsRegistry } from '@ampflow/observability';
import { createConsoleDataMetrics } from '../../services/console/src/data/metrics';
import { createConsoleMetrics } from '../../services/console/src/metrics';
import { createIngressMetrics } from '../../services/ingress/src/metrics';
import { createNormalizerMetrics } from '../../services/normalizer/src/metrics';
import { createAggregatorMetrics } from '../../services/session-aggregator/src/metrics';
import { createNotifierMetrics } from '../../services/notifier/src/metrics';

/**
 * Every metric the alert rules (deploy/prometheus/alerts.yml) and the Grafana dashboards
 * (deploy/grafana/dashboards/*.json) query is one that some service's /metrics exports (the console's too). The services' metric
 * factories run on fresh registries, without I/O; the default process metrics come from createMetricsRegistry,
 * as in every service. Here, not in a unit project, because it spans services.
 */

const root = join(__dirname, '../..');

/** Series that Prometheus writes itself for every target, not the services. */
const WRITTEN_BY_PROMETHEUS = new Set(['up']);

const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'offset',
  'inf',
  'nan',
]);

/**
 * Metric names in a PromQL expression: identifiers that are not functions, keywords, label names (in
 * matchers, `by (...)` and friends) or parts of strings, durations and numbers.
 */
export function metricNames(expr: string): string[] {
  const text = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ') // strings
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // ranges and subqueries
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ') // label lists
    .replace(/\$\{?\w+\}?/g, ' '); // Grafana variables
  const names = new Set<string>();
  const token = /(\d+(?:\.\d+)?(?:e[+-]?\d+)?[a-z]*)|([a-zA-Z_:][\w:]*)(\s*\()?/gi;
  for (const match of text.matchAll(token)) {
    const [, number, identifier, call] = match;
    if (number !== undefined || identifier === undefined || call !== undefined) continue;
    if (KEYWORDS.has(identifier.toLowerCase())) continue;
    names.add(identifier);
  }
  return [...names];
}

/** Name to type of every metric the services export; `defaultMetrics: false` leaves out the process metrics. */
async function exportedMetrics({ defaultMetrics = true } = {}): Promise<Map<string, string>> {
  const registries = ['ingress', 'normalizer', 'session-aggregator', 'notifier', 'console'].map((service) =>
    createMetricsRegistry(service, { defaultMetrics }),
  );
  createIngressMetrics(registries[0]!, { kafkaReady: () => true, inflightBytes: () => 0 });
  createNormalizerMetrics(registries[1]!);
  createAggregatorMetrics(registries[2]!, async () => 0);
  createNotifierMetrics(registries[3]!);
  createConsoleMetrics(registries[4]!);
  createConsoleDataMetrics(registries[4]!, { traceRecords: () => 0, traceBytes: () => 0, sessions: () => 0 });
  const types = new Map<string, string>();
  for (const registry of registries) {
    for (const metric of await registry.getMetricsAsJSON()) types.set(metric.name, String(metric.type));
  }
  return types;
}

/** A queried name is exported as it is, or is a histogram's (or summary's) `_bucket`, `_sum` or `_count`. */
function isExported(name: string, exported: Map<string, string>): boolean {
  if (exported.has(name) || WRITTEN_BY_PROMETHEUS.has(name)) return true;
  const suffix = /^(.+)_(bucket|sum|count)$/.exec(name);
  if (!suffix) return false;
  const type = exported.get(suffix[1]!);
  return type === 'histogram' || (type === 'summary' && suffix[2] !== 'bucket');
}

function ruleExpressions(): { where: string; expr: string }[] {
  const doc = parse(readFileSync(join(root, 'deploy/prometheus/alerts.yml'), 'utf8')) as {
    groups: { rules: { alert?: string; record?: string; expr: string }[] }[];
  };
  return doc.groups.flatMap((group) =>
    group.rules.map((rule) => ({ where: `alerts.yml ${rule.alert ?? rule.record}`, expr: rule.expr })),
  );
}

interface Panel {
  title?: string;
  targets?: { expr?: string }[];
  panels?: Panel[];
}

function dashboardExpressions(): { where: string; expr: string }[] {
  const dir = join(root, 'deploy/grafana/dashboards');
  return readdirSync(dir)
    .filter((file) => file.endsWith('.json'))
    .flatMap((file) => {
      const dashboard = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { panels: Panel[] };
      // Rows hold their panels when collapsed.
      const panels = dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);
      return panels.flatMap((panel) =>
        (panel.targets ?? [])
          .filter((target) => target.expr !== undefined)
          .map((target) => ({ where: `${file} "${panel.title}"`, expr: target.expr! })),
      );
    });
}

describe('metricNames', () => {
  it('finds the metrics and nothing else in an expression', () => {
    expect(
      metricNames(
        'histogram_quantile(0.99, sum by (job, le) (rate(ingress_publish_duration_seconds_bucket{provider="x"}[5m]))) > 0.5 ' +
          'unless on (job) min by (job) (time() - process_start_time_seconds{job="a"}) < 7 * 3600 and up == 1e3',
      ).sort(),
    ).toEqual(['ingress_publish_duration_seconds_bucket', 'process_start_time_seconds', 'up']);
  });
});

describe('metric names in alert rules and dashboards', () => {
  it('queries only metrics that some service exports', async () => {
    const exported = await exportedMetrics();
    const expressions = [...ruleExpressions(), ...dashboardExpressions()];
    expect(ruleExpressions().length).toBeGreaterThan(0);
    expect(dashboardExpressions().length).toBeGreaterThan(0);
    const unknown = expressions.flatMap(({ where, expr }) =>
      metricNames(expr)
        .filter((name) => !isExported(name, exported))
        .map((name) => `${where}: ${name}`),
    );
    expect(unknown).toEqual([]);
  });

  it('charts every metric of the services on a dashboard', async () => {
    const queried = dashboardExpressions().flatMap(({ expr }) => metricNames(expr));
    const uncharted = new Set((await exportedMetrics({ defaultMetrics: false })).keys());
    for (const name of queried) {
      uncharted.delete(name);
      const base = /^(.+)_(bucket|sum|count)$/.exec(name)?.[1];
      if (base !== undefined) uncharted.delete(base);
    }
    expect([...uncharted]).toEqual([]);
  });
});
