import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, relative, resolve } from 'node:path';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Service } from 'kubernetes-models/v1/Service';
import { parseAllDocuments } from 'yaml';
import { loadConfig, type z } from '@ampflow/config';
import {
  NotifierTopics,
  PROVIDERS,
  TOPIC_CLASSES,
  Topics,
  dlqTopic,
  rawTopic,
  type TopicClassName,
} from '@ampflow/contracts';
import { createMetricsRegistry } from '@ampflow/observability';
import { createOpsListener } from '@ampflow/runtime';
import { ingressEnv } from '../../services/ingress/src/config';
import { normalizerEnv } from '../../services/normalizer/src/config';
import { notifierEnv } from '../../services/notifier/src/config';
import { consoleEnv } from '../../services/console/src/config';
import { NOTIFIER_ENDPOINTS_TOPIC as notifierEndpointsTopic } from '../../services/notifier/src/app';
import { RETRY_TIERS, retryTopic } from '../../services/notifier/src/delivery/retry-tiers';
import { aggregatorEnv } from '../../services/session-aggregator/src/config';
import { changelogTopicOf } from '../../services/session-aggregator/src/state-changelog';

/**
 * deploy/k8s against Kubernetes' schemas and against the code. `kubectl --dry-run=client` is not available on
 * this machine, so every YAML document is parsed here and the core kinds are validated with kubernetes-models
 * (the API's OpenAPI schemas as JSON schemas); the CRDs (KEDA ScaledObject, Strimzi KafkaTopic) are checked by
 * hand for the fields their operators require. Then the manifests are compared with the services: variables,
 * ports, probe routes, consumer groups, topics and partitions. Here, not in a unit project, because it spans
 * services.
 */

const root = join(__dirname, '../..');
const k8sDir = join(root, 'deploy/k8s');

/** The code's view of each service: the zod schema its config.ts parses the environment with. */
const SERVICES: Record<string, z.ZodObject> = {
  ingress: ingressEnv,
  normalizer: normalizerEnv,
  'session-aggregator': aggregatorEnv,
  notifier: notifierEnv,
  console: consoleEnv,
};

/** Well-formed stand-ins for the Secret's values (the repository holds none). */
const SECRET_STANDINS: Record<string, string> = {
  TELEMATICA_WEBHOOK_SECRET: 'whsec_c2VjcmV0LWZvci10ZXN0cw==',
  NOTIFIER_ADMIN_TOKEN: 'a-stand-in-admin-token-of-32-characters',
  NOTIFIER_SECRETS_KEY: `k2:${'0f'.repeat(32)}`,
  NOTIFIER_SECRETS_KEY_PREVIOUS: `k1:${'f0'.repeat(32)}`,
  CONSOLE_SESSION_KEY: 'a-stand-in-console-session-key-of-32-characters',
};

/** packages/runtime/src/lifecycle.ts: a stop that outlasts this exits 1. */
const FORCE_STOP_MS = 25_000;

// ---- loading ------------------------------------------------------------------------------------------------

interface Manifest {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

interface Doc {
  file: string;
  index: number;
  manifest: Manifest;
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return yamlFiles(path);
    return /\.ya?ml$/.test(entry) ? [path] : [];
  });
}

const files = yamlFiles(k8sDir).sort();
const parseErrors: string[] = [];
const docs: Doc[] = files.flatMap((path) => {
  const file = relative(k8sDir, path);
  return parseAllDocuments(readFileSync(path, 'utf8')).flatMap((doc, index) => {
    for (const error of [...doc.errors, ...doc.warnings])
      parseErrors.push(`${file}#${index}: ${error.message}`);
    const manifest = doc.toJS() as Manifest | null;
    return manifest === null ? [] : [{ file, index, manifest }];
  });
});

const ofKind = (kind: string) => docs.filter((d) => d.manifest.kind === kind);
const isBase = (d: Doc) => d.file.startsWith('base/');
const name = (d: Doc) => d.manifest.metadata?.name ?? '';

// Narrow views of the kinds the consistency checks read (the schemas have been checked separately).
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string }; configMapKeyRef?: unknown };
}
interface Probe {
  httpGet?: { path: string; port: string | number };
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  ports?: { name?: string; containerPort: number }[];
  env?: EnvVar[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
  securityContext?: Record<string, unknown>;
}
interface PodSpec {
  containers: Container[];
  terminationGracePeriodSeconds?: number;
  securityContext?: Record<string, unknown>;
}
interface DeploymentView {
  spec: {
    replicas?: number;
    selector: { matchLabels: Record<string, string> };
    template: {
      metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
      spec: PodSpec;
    };
  };
}
interface ScaledObjectView {
  spec?: {
    scaleTargetRef?: { name?: string; kind?: string };
    minReplicaCount?: number;
    maxReplicaCount?: number;
    triggers?: { type?: string; metadata?: Record<string, string> }[];
  };
}
interface KafkaTopicView {
  spec?: {
    topicName?: string;
    partitions?: number;
    replicas?: number;
    config?: Record<string, string | number>;
  };
}

const configMapData = (d: Doc) => (d.manifest as { data?: Record<string, string> }).data ?? {};
const baseConfig = configMapData(ofKind('ConfigMap').find((d) => isBase(d) && name(d) === 'ampflow-config')!);
const deployment = (service: string) =>
  ofKind('Deployment').find((d) => isBase(d) && name(d) === service)?.manifest as unknown as DeploymentView;
/** The one container of a service's pod (the Deployments have exactly one; the test of each service checks it). */
function container(service: string): Container {
  const [first] = deployment(service).spec.template.spec.containers;
  if (!first) throw new Error(`${service}: no container`);
  return first;
}

/** The default a schema gives a variable when it is unset. */
function defaultOf(schema: z.ZodObject, key: string): unknown {
  const result = (schema.shape[key] as z.ZodType).safeParse(undefined);
  return result.success ? result.data : undefined;
}

/** Variables without a default: the secrets (and the registry URL, which the ConfigMap gives). */
function requiredKeys(schema: z.ZodObject): string[] {
  return Object.keys(schema.shape).filter(
    (key) => !(schema.shape[key] as z.ZodType).safeParse(undefined).success,
  );
}

// ---- schemas ------------------------------------------------------------------------------------------------

/**
 * Fields that the Kubernetes API does not know. The API's schemas allow unknown properties (so kubernetes-models'
 * validate() does too) and a typo such as `livenesProbe` would silently drop a probe; the apiserver only warns.
 * The field names come from kubernetes-models' declaration files, followed from the kind's interface through
 * its imports (a map such as `labels` or `limits`, and a type alias such as IntOrString, is a leaf).
 */
function unknownFields(data: unknown, dts: string, path = ''): string[] {
  if (data === null || typeof data !== 'object') return [];
  if (Array.isArray(data)) return data.flatMap((item, i) => unknownFields(item, dts, `${path}[${i}]`));
  const fields = declaredFields(dts);
  if (!fields) return [];
  return Object.entries(data).flatMap(([key, value]) => {
    if (path === '' && (key === 'apiVersion' || key === 'kind')) return [];
    if (!fields.has(key)) return [`${path}.${key}`];
    const next = fields.get(key);
    return next ? unknownFields(value, next, `${path}.${key}`) : [];
  });
}

const declared = new Map<string, Map<string, string | undefined> | undefined>();

/** A declaration file's first interface: field name -> the declaration file of its type (undefined: a leaf). */
function declaredFields(dts: string): Map<string, string | undefined> | undefined {
  if (declared.has(dts)) return declared.get(dts);
  const text = readFileSync(dts, 'utf8');
  const imports = new Map<string, string>();
  for (const [, typeName = '', spec = ''] of text.matchAll(/^import \{ (\w+) \} from "([^"]+)";$/gm)) {
    const file = spec.startsWith('.')
      ? join(dirname(dts), `${spec}.d.ts`)
      : require.resolve(spec).replace(/\.js$/, '.d.ts');
    imports.set(typeName, file);
  }
  const body = /^export interface \w+[^{]*\{\n([\s\S]*?)^\}/m.exec(text);
  let fields: Map<string, string | undefined> | undefined;
  if (body?.[1] !== undefined) {
    fields = new Map();
    for (const [, field = '', declaredType = ''] of body[1].matchAll(/^ {4}"([^"]+)"\??: (.*?);?$/gm)) {
      const type = /^Array<(\w+)>$/.exec(declaredType)?.[1] ?? declaredType;
      fields.set(field, imports.get(type));
    }
  }
  declared.set(dts, fields);
  return fields;
}

const CORE: Record<string, new (data: never) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'v1/Service': Service,
  'v1/ConfigMap': ConfigMap,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
};
const CRDS = new Set([
  'keda.sh/v1alpha1/ScaledObject',
  'kafka.strimzi.io/v1beta2/KafkaTopic',
  // Checked by test/e2e/k8s-monitoring.test.ts.
  'monitoring.coreos.com/v1/PodMonitor',
  'monitoring.coreos.com/v1/PrometheusRule',
]);
const KUSTOMIZATION = 'kustomize.config.k8s.io/v1beta1/Kustomization';
const typeOf = (m: Manifest) => `${m.apiVersion}/${m.kind}`;

describe('deploy/k8s manifests', () => {
  it('are YAML that parses, in a base, an overlay and the topics', () => {
    expect(parseErrors).toEqual([]);
    expect(files.map((f) => relative(k8sDir, f))).toEqual(
      expect.arrayContaining([
        'base/kustomization.yaml',
        'overlays/example/kustomization.yaml',
        'kafka-topics/kustomization.yaml',
      ]),
    );
    for (const d of docs) expect([d.file, d.manifest.apiVersion, d.manifest.kind].every(Boolean)).toBe(true);
  });

  it('hold only kinds this test knows how to check', () => {
    const unknown = docs
      .map((d) => typeOf(d.manifest))
      .filter((t) => !CORE[t] && !CRDS.has(t) && t !== KUSTOMIZATION);
    expect(unknown).toEqual([]);
  });

  it('validate against the Kubernetes API schemas (kubernetes-models)', () => {
    const failures: string[] = [];
    for (const d of docs) {
      const Model = CORE[typeOf(d.manifest)];
      if (!Model) continue;
      try {
        new Model(d.manifest as never).validate();
      } catch (error) {
        failures.push(`${d.file}#${d.index} ${d.manifest.kind}/${name(d)}: ${(error as Error).message}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('use no field the Kubernetes API does not know', () => {
    const found: string[] = [];
    for (const d of docs) {
      const Model = CORE[typeOf(d.manifest)];
      if (!Model) continue;
      const dts = require.resolve(`kubernetes-models/${typeOf(d.manifest)}`).replace(/\.js$/, '.d.ts');
      found.push(
        ...unknownFields(d.manifest, dts).map(
          (f) => `${d.file}#${d.index} ${d.manifest.kind}/${name(d)}: ${f}`,
        ),
      );
    }
    expect(found).toEqual([]);
    // The check itself finds a typo.
    const dts = require.resolve('kubernetes-models/apps/v1/Deployment').replace(/\.js$/, '.d.ts');
    const typo = { spec: { template: { spec: { containers: [{ name: 'c', livenesProbe: {} }] } } } };
    expect(unknownFields(typo, dts)).toEqual(['.spec.template.spec.containers[0].livenesProbe']);
  });

  it('are all reached from a kustomization, and every path a kustomization names exists', () => {
    const referenced = new Set<string>();
    for (const d of ofKind('Kustomization')) {
      const dir = dirname(join(k8sDir, d.file));
      const k = d.manifest as { resources?: string[]; patches?: { path?: string }[] };
      const paths = [...(k.resources ?? []), ...(k.patches ?? []).flatMap((p) => (p.path ? [p.path] : []))];
      for (const path of paths) {
        const target = resolve(dir, path);
        expect(existsSync(target)).toBe(true);
        referenced.add(statSync(target).isDirectory() ? join(target, 'kustomization.yaml') : target);
      }
    }
    const roots = ['overlays/example/kustomization.yaml', 'kafka-topics/kustomization.yaml'];
    const unreached = files.filter((f) => !referenced.has(f) && !roots.includes(relative(k8sDir, f)));
    expect(unreached.map((f) => relative(k8sDir, f))).toEqual([]);
  });

  it('never hold a Secret or a secret value', () => {
    expect(ofKind('Secret')).toEqual([]);
    const secretNames = new Set(Object.values(SERVICES).flatMap(requiredKeys));
    secretNames.delete('SCHEMA_REGISTRY_URL');
    for (const d of ofKind('ConfigMap')) {
      for (const key of Object.keys(configMapData(d))) expect(secretNames.has(key)).toBe(false);
    }
    for (const service of Object.keys(SERVICES)) {
      for (const env of container(service).env ?? []) {
        if (secretNames.has(env.name)) {
          expect(env.value).toBeUndefined();
          expect(env.valueFrom?.secretKeyRef).toEqual({ name: 'ampflow-secrets', key: env.name });
        }
      }
    }
    expect(JSON.stringify(docs)).not.toMatch(/whsec_|kind":"Secret"/);
  });
});

describe('deploy/k8s CRDs (checked by hand)', () => {
  const topics = ofKind('KafkaTopic');
  const partitionsOf = (topic: string) =>
    (topics.find((d) => (d.manifest as KafkaTopicView).spec?.topicName === topic)?.manifest as KafkaTopicView)
      ?.spec?.partitions;

  it('ScaledObjects have a target, replica bounds within the partitions and complete kafka triggers', () => {
    const scaled = ofKind('ScaledObject');
    expect(scaled.map(name).sort()).toEqual(['normalizer', 'notifier', 'session-aggregator']);
    for (const d of scaled) {
      const spec = (d.manifest as ScaledObjectView).spec;
      expect(spec?.scaleTargetRef?.name).toBe(name(d));
      expect(deployment(spec!.scaleTargetRef!.name!)).toBeDefined();
      // KEDA owns the replica count of its target: a Deployment replicas field would fight it.
      expect(deployment(name(d)).spec.replicas).toBeUndefined();
      expect(spec?.minReplicaCount).toBeGreaterThanOrEqual(1);
      expect(spec?.triggers?.length).toBeGreaterThan(0);
      for (const trigger of spec!.triggers!) {
        expect(trigger.type).toBe('kafka');
        const meta = trigger.metadata ?? {};
        for (const field of ['bootstrapServers', 'consumerGroup', 'topic', 'lagThreshold']) {
          expect(typeof meta[field]).toBe('string');
        }
        expect(meta.lagThreshold).toMatch(/^[1-9]\d*$/);
        expect(meta.bootstrapServers).toBe(baseConfig.KAFKA_BROKERS);
        const partitions = partitionsOf(meta.topic ?? '');
        expect(partitions).toBeDefined();
        expect(spec!.maxReplicaCount).toBeLessThanOrEqual(partitions!);
        expect(spec!.maxReplicaCount).toBeGreaterThanOrEqual(spec!.minReplicaCount!);
      }
    }
  });

  it('KafkaTopics have a cluster label, partitions, replicas 3 and min.insync.replicas 2', () => {
    expect(topics.length).toBeGreaterThan(0);
    for (const d of topics) {
      const spec = (d.manifest as KafkaTopicView).spec;
      expect(d.manifest.metadata?.labels?.['strimzi.io/cluster']).toBe('ampflow');
      // Kubernetes names: lowercase alphanumerics, '-' and '.'.
      expect(name(d)).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
      expect(Number.isInteger(spec?.partitions) && spec!.partitions! >= 1).toBe(true);
      expect(spec?.replicas).toBe(3);
      expect(Number(spec?.config?.['min.insync.replicas'])).toBe(2);
    }
  });
});

describe('deploy/k8s against the code', () => {
  const topics = ofKind('KafkaTopic').map((d) => (d.manifest as KafkaTopicView).spec!);
  const topic = (topicName: string) => topics.find((t) => t.topicName === topicName);
  const changelog = changelogTopicOf(defaultOf(aggregatorEnv, 'AGGREGATOR_GROUP_ID') as string);

  it('every ConfigMap key is a variable some service reads', () => {
    const read = new Set(Object.values(SERVICES).flatMap((schema) => Object.keys(schema.shape)));
    for (const d of ofKind('ConfigMap')) {
      expect(Object.keys(configMapData(d)).filter((key) => !read.has(key))).toEqual([]);
    }
  });

  it.each(Object.keys(SERVICES))(
    '%s: image, command, env, ports, probes, shutdown and security',
    (service) => {
      const schema = SERVICES[service]!;
      const pod = deployment(service).spec.template;
      const c = container(service);
      const port = defaultOf(schema, 'HTTP_PORT') as number;

      expect(c.image).toBe(`ampflow/${service}`);
      expect([...(c.command ?? []), ...(c.args ?? [])]).toEqual(['node', `services/${service}/dist/main.js`]);
      expect(existsSync(join(root, 'services', service, 'src/main.ts'))).toBe(true);

      // Every variable set is one the service reads; together with the ConfigMap it is a valid configuration.
      const read = new Set(Object.keys(schema.shape));
      expect((c.env ?? []).map((e) => e.name).filter((key) => !read.has(key))).toEqual([]);
      expect(c.envFrom).toEqual([{ configMapRef: { name: 'ampflow-config' } }]);
      const env: Record<string, string> = {};
      for (const [key, value] of Object.entries(baseConfig)) if (read.has(key)) env[key] = value;
      for (const e of c.env ?? []) env[e.name] = e.value ?? SECRET_STANDINS[e.name] ?? 'a-stand-in-secret';
      const missing = requiredKeys(schema).filter((key) => env[key] === undefined);
      expect(missing).toEqual([]);
      expect(() => loadConfig(schema, env)).not.toThrow();
      expect(env.HTTP_PORT).toBe(String(port));

      // The port is the service's default HTTP_PORT, named `http` for the probes and the Service.
      expect(c.ports).toEqual([{ name: 'http', containerPort: port, protocol: 'TCP' }]);
      const svc = ofKind('Service').find((d) => isBase(d) && name(d) === service)!.manifest as unknown as {
        spec: { selector: Record<string, string>; ports: { targetPort: string | number }[] };
      };
      expect(svc.spec.ports.map((p) => p.targetPort)).toEqual(['http']);
      expect(Object.entries(svc.spec.selector).every(([k, v]) => pod.metadata.labels[k] === v)).toBe(true);

      expect(c.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'http' });
      expect(c.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'http' });
      expect(c.startupProbe?.httpGet).toEqual({ path: '/healthz', port: 'http' });
      expect(pod.metadata.annotations).toMatchObject({
        'prometheus.io/scrape': 'true',
        'prometheus.io/port': String(port),
        'prometheus.io/path': '/metrics',
      });

      // The kubelet's SIGKILL must come after the service's own drain and force-stop, preStop pause included.
      const drainMs = Number(baseConfig.SHUTDOWN_DRAIN_MS ?? defaultOf(schema, 'SHUTDOWN_DRAIN_MS'));
      const preStopS = Number(c.lifecycle?.preStop?.exec?.command[1] ?? 0);
      expect(pod.spec.terminationGracePeriodSeconds! * 1000).toBeGreaterThan(
        drainMs + FORCE_STOP_MS + preStopS * 1000,
      );

      expect(pod.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
      expect(c.securityContext).toMatchObject({
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
      });
      expect(c.securityContext?.capabilities).toEqual({ drop: ['ALL'] });

      const pdb = ofKind('PodDisruptionBudget').find((d) => name(d) === service)!.manifest as unknown as {
        spec: { selector: { matchLabels: Record<string, string> } };
      };
      expect(pdb.spec.selector.matchLabels).toEqual(deployment(service).spec.selector.matchLabels);
    },
  );

  it('the probe paths are routes the services answer (packages/runtime ops routes)', async () => {
    const server: Server = createServer(createOpsListener(createMetricsRegistry('k8s-test'), () => ({})));
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    try {
      const { port } = server.address() as AddressInfo;
      const paths = new Set(
        Object.keys(SERVICES).flatMap((s) => {
          const c = container(s);
          return [c.livenessProbe, c.readinessProbe, c.startupProbe].map((p) => p?.httpGet?.path ?? '');
        }),
      );
      paths.add('/metrics');
      for (const path of paths) {
        expect([path, (await fetch(`http://127.0.0.1:${port}${path}`)).status]).toEqual([path, 200]);
      }
      expect((await fetch(`http://127.0.0.1:${port}/no-such-route`)).status).toBe(404);
    } finally {
      await new Promise((done) => server.close(done));
    }
  });

  it('the ingress HPA scales the ingress Deployment on CPU', () => {
    const hpas = ofKind('HorizontalPodAutoscaler');
    expect(hpas.map(name)).toEqual(['ingress']);
    const spec = (
      hpas[0]!.manifest as unknown as {
        spec: { scaleTargetRef: { kind: string; name: string }; minReplicas: number; metrics: unknown[] };
      }
    ).spec;
    expect(spec.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: 'ingress' });
    expect(spec.minReplicas).toBeGreaterThanOrEqual(2);
    expect(spec.metrics).toEqual([
      {
        type: 'Resource',
        resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } },
      },
    ]);
    expect(deployment('ingress').spec.replicas).toBeUndefined();
  });

  it('KEDA triggers name the services’ default consumer groups and the topics they read', () => {
    const triggers = (service: string) =>
      (
        ofKind('ScaledObject').find((d) => name(d) === service)!.manifest as ScaledObjectView
      ).spec!.triggers!.map((t) => [t.metadata!.consumerGroup, t.metadata!.topic]);
    const normalizerGroup = defaultOf(normalizerEnv, 'NORMALIZER_GROUP_ID');
    expect(triggers('normalizer').sort()).toEqual(
      PROVIDERS.map((p) => [normalizerGroup, rawTopic(p)]).sort(),
    );
    expect(triggers('session-aggregator')).toEqual([
      [defaultOf(aggregatorEnv, 'AGGREGATOR_GROUP_ID'), Topics.vehicleTelemetry],
    ]);
    // The notifier on its deliveries topic only (the retry tiers always show lag while retries wait).
    expect(triggers('notifier')).toEqual([
      [defaultOf(notifierEnv, 'NOTIFIER_GROUP_ID'), NotifierTopics.deliveries],
    ]);
  });

  it('the KafkaTopics are exactly the topics the code defines, with the services’ partition defaults', () => {
    const raw = PROVIDERS.map(rawTopic);
    const canonical = [
      Topics.vehicleTelemetry,
      Topics.commandResults,
      Topics.deviceLinks,
      Topics.vehicleErrors,
    ];
    const dlqs = [...raw, Topics.vehicleTelemetry].map(dlqTopic);
    const expected: Record<string, number> = {};
    for (const t of raw) expected[t] = defaultOf(ingressEnv, 'RAW_TOPIC_PARTITIONS') as number;
    for (const t of canonical) expected[t] = defaultOf(normalizerEnv, 'CANONICAL_TOPIC_PARTITIONS') as number;
    expected[Topics.chargingSessions] = defaultOf(aggregatorEnv, 'SESSIONS_TOPIC_PARTITIONS') as number;
    // Dead-letter topics are created with one partition (normalizer and aggregator app.ts).
    for (const t of [...dlqs, Topics.webhookDeliveriesDlq]) expected[t] = 1;
    // The changelog is created with the telemetry topic's partition count.
    expected[changelog] = expected[Topics.vehicleTelemetry]!;
    // The notifier's endpoints table (one partition, compacted) and its retry tiers.
    expected[notifierEndpointsTopic] = 1;
    for (const tier of RETRY_TIERS)
      expected[retryTopic('', tier)] = defaultOf(notifierEnv, 'NOTIFIER_RETRY_TOPIC_PARTITIONS') as number;
    // Its deliveries topic (keyed by endpoint) and endpoint-health table (one partition, compacted).
    expected[NotifierTopics.deliveries] = defaultOf(
      notifierEnv,
      'NOTIFIER_DELIVERY_TOPIC_PARTITIONS',
    ) as number;
    expected[NotifierTopics.endpointHealth] = 1;
    expect(raw.every((t) => expected[t] === defaultOf(normalizerEnv, 'CANONICAL_TOPIC_PARTITIONS'))).toBe(
      true,
    );

    const actual = Object.fromEntries(topics.map((t) => [t.topicName, t.partitions]));
    expect(actual).toEqual(expected);
    // Every Topics constant is covered (a new contract topic needs a KafkaTopic).
    for (const t of Object.values(Topics)) expect(actual[t]).toBeDefined();
  });

  it('every KafkaTopic carries its class’s configs from the catalogue (packages/contracts/src/topic-configs.ts)', () => {
    const classOf: Record<string, TopicClassName> = {};
    const raw = PROVIDERS.map(rawTopic);
    for (const t of raw) classOf[t] = 'raw';
    for (const t of [
      Topics.vehicleTelemetry,
      Topics.commandResults,
      Topics.deviceLinks,
      Topics.vehicleErrors,
      Topics.chargingSessions,
    ])
      classOf[t] = 'canonical';
    for (const t of [...raw, Topics.vehicleTelemetry]) classOf[dlqTopic(t)] = 'deadLetter';
    classOf[Topics.webhookDeliveriesDlq] = 'webhookDeliveriesDlq';
    classOf[changelog] = 'stateChangelog';
    classOf[notifierEndpointsTopic] = 'notifierEndpoints';
    for (const tier of RETRY_TIERS) classOf[retryTopic('', tier)] = 'notifierRetry';
    classOf[NotifierTopics.deliveries] = 'notifierDeliveries';
    classOf[NotifierTopics.endpointHealth] = 'notifierEndpointHealth';
    expect(topics.map((t) => t.topicName).sort()).toEqual(Object.keys(classOf).sort());

    const asStrings = (config: object) =>
      Object.fromEntries(Object.entries(config).map(([key, value]) => [key, String(value)]));
    for (const t of topics) {
      // min.insync.replicas goes with the cluster's shape (3 replicas here), not with the class of topic.
      const { 'min.insync.replicas': _minIsr, ...config } = t.config ?? {};
      const wanted = TOPIC_CLASSES[classOf[t.topicName!]!].config;
      expect({ topic: t.topicName, config: asStrings(config) }).toEqual({
        topic: t.topicName,
        config: asStrings(wanted),
      });
    }
  });

  it('the notifier keeps deliveries for a retry or a recover longer than its disable window, plus a week', () => {
    const disableAfterMs = defaultOf(notifierEnv, 'NOTIFIER_DISABLE_AFTER_FAILING_MS') as number;
    const weekMs = 7 * 24 * 3_600_000;
    for (const t of [retryTopic('', RETRY_TIERS[0]!), Topics.webhookDeliveriesDlq]) {
      expect(Number(topic(t)?.config?.['retention.ms'])).toBeGreaterThan(disableAfterMs + weekMs);
    }
    expect(Number(topic(rawTopic('smartcar'))?.config?.['retention.ms'])).toBe(
      defaultOf(ingressEnv, 'RAW_RETENTION_MS'),
    );
  });

  it('the overlay retags every base image and patches only known variables', () => {
    const overlay = ofKind('Kustomization').find((d) => d.file.startsWith('overlays/example/'))!.manifest as {
      images?: { name: string }[];
    };
    expect((overlay.images ?? []).map((i) => i.name).sort()).toEqual(
      Object.keys(SERVICES)
        .map((s) => container(s).image)
        .sort(),
    );
  });
});
