import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';

/**
 * deploy/k8s/base's monitoring against the alert rules (deploy/prometheus/alerts.yml): the PodMonitor gives every
 * service's series the `job` that the rules select, the same values as the docker compose scrape config
 * (deploy/prometheus/prometheus.yml), and the PrometheusRule holds exactly the rules of alerts.yml. The rules
 * themselves are tested with both label sets in deploy/prometheus/alerts.test.yml; the /metrics route is checked
 * against the services in k8s-manifests.test.ts. Here, not in a unit project, because it spans the repository.
 */

const root = join(__dirname, '../..');
const baseDir = join(root, 'deploy/k8s/base');

interface Manifest {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string };
  spec?: unknown;
}

interface Selector {
  matchLabels?: Record<string, string>;
  matchExpressions?: {
    key: string;
    operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
    values?: string[];
  }[];
}

interface PodMonitorSpec {
  jobLabel?: string;
  selector: Selector;
  namespaceSelector?: unknown;
  podMetricsEndpoints: { port?: string; path?: string; interval?: string; scrapeTimeout?: string }[];
}

interface DeploymentSpec {
  template: {
    metadata: { labels: Record<string, string> };
    spec: { containers: { name: string; ports?: { name?: string; containerPort: number }[] }[] };
  };
}

interface RuleGroup {
  name: string;
  rules: { alert?: string; expr: string }[];
}

const manifests: Manifest[] = readdirSync(baseDir)
  .filter((file) => file.endsWith('.yaml') && file !== 'kustomization.yaml')
  .flatMap((file) =>
    parseAllDocuments(readFileSync(join(baseDir, file), 'utf8')).map((doc) => doc.toJS() as Manifest),
  );
const ofKind = (kind: string) => manifests.filter((m) => m.kind === kind);

const compose = parse(readFileSync(join(root, 'deploy/prometheus/prometheus.yml'), 'utf8')) as {
  global: { scrape_interval: string; scrape_timeout: string };
  scrape_configs: { job_name: string; metrics_path?: string }[];
};
const composeJobs = compose.scrape_configs.map((c) => c.job_name).sort();
const alertGroups = (
  parse(readFileSync(join(root, 'deploy/prometheus/alerts.yml'), 'utf8')) as { groups: RuleGroup[] }
).groups;

/** Every value a `job` matcher of the rules names (`job="x"`, and the alternatives of `job=~"x|y"`). */
function ruleJobs(): string[] {
  const jobs = new Set<string>();
  for (const { expr } of alertGroups.flatMap((g) => g.rules)) {
    for (const [, op, value] of expr.matchAll(/\bjob\s*(=~|=)\s*"([^"]*)"/g)) {
      const values = op === '=~' ? value!.split('|') : [value!];
      for (const v of values) {
        expect({ expr, value: v }).toEqual({ expr, value: expect.stringMatching(/^[\w-]+$/) });
        jobs.add(v);
      }
    }
  }
  return [...jobs].sort();
}

/** Kubernetes label selector semantics (matchLabels and matchExpressions, all must hold). */
function selects(selector: Selector, labels: Record<string, string>): boolean {
  const byLabel = Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  const byExpression = (selector.matchExpressions ?? []).every(({ key, operator, values = [] }) => {
    const value = labels[key];
    switch (operator) {
      case 'In':
        return value !== undefined && values.includes(value);
      case 'NotIn':
        return value === undefined || !values.includes(value);
      case 'Exists':
        return value !== undefined;
      case 'DoesNotExist':
        return value === undefined;
    }
  });
  return byLabel && byExpression;
}

describe('deploy/k8s monitoring (Prometheus Operator)', () => {
  const podMonitors = ofKind('PodMonitor');
  const deployments = ofKind('Deployment');

  it('has one PodMonitor, in the namespace of the services, and the four Deployments', () => {
    expect(podMonitors.map((m) => m.apiVersion)).toEqual(['monitoring.coreos.com/v1']);
    // Without a namespaceSelector a PodMonitor watches its own namespace, where the overlay puts everything.
    expect((podMonitors[0]!.spec as PodMonitorSpec).namespaceSelector).toBeUndefined();
    expect(deployments.map((d) => d.metadata?.name).sort()).toEqual(composeJobs);
  });

  it('the rules select the jobs that the compose scrape config defines', () => {
    expect(ruleJobs()).toEqual(composeJobs);
  });

  it('scrapes the pod of every Deployment, and only those, on its http port at /metrics', () => {
    const spec = podMonitors[0]!.spec as PodMonitorSpec;
    expect(spec.podMetricsEndpoints).toHaveLength(1);
    const [endpoint] = spec.podMetricsEndpoints;
    expect(endpoint!.path ?? '/metrics').toBe('/metrics');
    expect(compose.scrape_configs.every((c) => (c.metrics_path ?? '/metrics') === '/metrics')).toBe(true);
    for (const d of deployments) {
      const pod = (d.spec as DeploymentSpec).template;
      expect({ deployment: d.metadata?.name, selected: selects(spec.selector, pod.metadata.labels) }).toEqual(
        {
          deployment: d.metadata?.name,
          selected: true,
        },
      );
      const ports = pod.spec.containers.flatMap((c) => (c.ports ?? []).map((p) => p.name));
      expect({ deployment: d.metadata?.name, ports }).toEqual({
        deployment: d.metadata?.name,
        ports: expect.arrayContaining([endpoint!.port]),
      });
    }
    expect(selects(spec.selector, { 'app.kubernetes.io/name': 'kafka' })).toBe(false);
  });

  it('gives each service the job name that compose gives it, from a pod label (jobLabel)', () => {
    const spec = podMonitors[0]!.spec as PodMonitorSpec;
    // Unset, the operator names the job <namespace>/<PodMonitor name> and the rules' job matchers match nothing.
    expect(spec.jobLabel).toEqual(expect.any(String));
    const jobs = deployments.map((d) => {
      const labels = (d.spec as DeploymentSpec).template.metadata.labels;
      expect({ deployment: d.metadata?.name, job: labels[spec.jobLabel!] }).toEqual({
        deployment: d.metadata?.name,
        job: d.metadata?.name,
      });
      return labels[spec.jobLabel!]!;
    });
    expect(jobs.sort()).toEqual(composeJobs);
  });

  it('scrapes as often as compose, which the rules’ windows assume', () => {
    const [endpoint] = (podMonitors[0]!.spec as PodMonitorSpec).podMetricsEndpoints;
    expect({ interval: endpoint!.interval, scrapeTimeout: endpoint!.scrapeTimeout }).toEqual({
      interval: compose.global.scrape_interval,
      scrapeTimeout: compose.global.scrape_timeout,
    });
  });

  it('has a PrometheusRule with exactly the rules of deploy/prometheus/alerts.yml', () => {
    const rules = ofKind('PrometheusRule');
    expect(rules.map((m) => m.apiVersion)).toEqual(['monitoring.coreos.com/v1']);
    const { groups } = rules[0]!.spec as { groups: RuleGroup[] };
    // Out of date: `node scripts/gen-prometheus-rule.js` writes it again from alerts.yml.
    expect(groups).toEqual(alertGroups);
  });
});
