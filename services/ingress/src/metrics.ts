import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LATENCY_BUCKETS_SECONDS } from '@ampflow/observability';

export type Outcome =
  | 'accepted'
  | 'duplicate'
  | 'challenge_answered'
  | 'unauthorized'
  | 'invalid'
  | 'too_large'
  | 'unsupported_media_type'
  | 'unavailable'
  | 'busy'
  | 'deadline_exceeded'
  | 'request_timeout'
  | 'error';

/** Registers the ingress's metrics; the gauges read their values through `sources` at scrape time. */
export function createIngressMetrics(
  registry: Registry,
  sources: {
    kafkaReady: () => boolean;
    inflightBytes: () => number;
    /** Open HTTP connections (0 before the server listens). */
    openConnections?: () => Promise<number>;
  },
) {
  return {
    requests: new Counter({
      name: 'ingress_requests_total',
      help: 'Webhook requests by provider, event type and outcome',
      labelNames: ['provider', 'event_type', 'outcome'] as const,
      registers: [registry],
    }),
    signatureFailures: new Counter({
      name: 'ingress_signature_failures_total',
      help: 'Requests refused for a missing, wrong or stale signature',
      labelNames: ['provider', 'reason'] as const,
      registers: [registry],
    }),
    schemaFailures: new Counter({
      name: 'ingress_schema_failures_total',
      help: 'Signed requests whose body is not JSON or fails the provider schema (answered 400)',
      labelNames: ['provider', 'reason'] as const,
      registers: [registry],
    }),
    duplicates: new Counter({
      name: 'ingress_duplicates_total',
      help: 'Deliveries of an event id already stored (answered 200, not republished)',
      labelNames: ['provider'] as const,
      registers: [registry],
    }),
    unknownEventTypes: new Counter({
      name: 'ingress_unknown_event_types_total',
      help: 'Validly signed events of a type without a schema (published as they are)',
      labelNames: ['provider'] as const,
      registers: [registry],
    }),
    dedupErrors: new Counter({
      name: 'ingress_dedup_errors_total',
      help: 'Redis failures of the duplicate check; the event is published anyway (downstream dedups by id)',
      labelNames: ['operation'] as const,
      registers: [registry],
    }),
    publishSeconds: new Histogram({
      name: 'ingress_publish_duration_seconds',
      help: 'Time from publish to Kafka acknowledgement (acks=-1)',
      labelNames: ['provider', 'result'] as const,
      buckets: LATENCY_BUCKETS_SECONDS,
      registers: [registry],
    }),
    bodyBytes: new Histogram({
      name: 'ingress_body_size_bytes',
      help: 'Size of webhook bodies received',
      labelNames: ['provider'] as const,
      buckets: [256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144],
      registers: [registry],
    }),
    kafkaConnected: new Gauge({
      name: 'ingress_kafka_connected',
      help: '1 while the Kafka producer is connected and a broker answers the readiness probe',
      registers: [registry],
      collect() {
        this.set(sources.kafkaReady() ? 1 : 0);
      },
    }),
    busyRefusals: new Counter({
      name: 'ingress_busy_refusals_total',
      help: 'Requests answered 503 ingress_busy, unread, because their body would exceed INGRESS_MAX_INFLIGHT_BYTES',
      registers: [registry],
    }),
    inflightBytes: new Gauge({
      name: 'ingress_inflight_bytes',
      help: 'Request-body bytes reserved by requests not yet answered (bounded by INGRESS_MAX_INFLIGHT_BYTES)',
      registers: [registry],
      collect() {
        this.set(sources.inflightBytes());
      },
    }),
    openConnections: new Gauge({
      name: 'ingress_http_connections',
      help: 'HTTP connections open (bounded by HTTP_MAX_CONNECTIONS)',
      registers: [registry],
      async collect() {
        this.set(sources.openConnections ? await sources.openConnections() : 0);
      },
    }),
    connectionsRefused: new Counter({
      name: 'ingress_http_connections_refused_total',
      help: 'Connections closed unanswered at once because HTTP_MAX_CONNECTIONS were already open',
      registers: [registry],
    }),
  };
}

export type IngressMetrics = ReturnType<typeof createIngressMetrics>;
