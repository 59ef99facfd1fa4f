/** Kafka topic names: public contract (DESIGN.md). */
export const Topics = {
  rawSmartcar: 'ev.raw.smartcar.v1',
  rawTelematica: 'ev.raw.telematica.v1',
  vehicleTelemetry: 'ev.vehicle-telemetry.v1',
  commandResults: 'ev.command-results.v1',
  deviceLinks: 'ev.device-links.v1',
  vehicleErrors: 'ev.vehicle-errors.v1',
  chargingSessions: 'ev.charging-sessions.v1',
  webhookDeliveriesDlq: 'ev.webhook-deliveries.dlq',
} as const;

/**
 * The notifier's internal topics (before `KAFKA_TOPIC_PREFIX`; the retry tiers are named in the notifier's
 * `retry-tiers.ts`): not part of the public contract, listed here so that deploy/ and docs/ name them once.
 */
export const NotifierTopics = {
  /** Deliveries due now, keyed by endpoint id: one partition, hence one instance, sends to each endpoint. */
  deliveries: 'ampflow.notifier.deliveries',
  /** Compacted: each endpoint's circuit and failing-since clock, keyed by endpoint id. */
  endpointHealth: 'ampflow.notifier.endpoint-health',
} as const;

export type TopicName = (typeof Topics)[keyof typeof Topics];

export type Provider = 'smartcar' | 'telematica';

export const PROVIDERS: readonly Provider[] = ['smartcar', 'telematica'];

export function rawTopic(provider: Provider): string {
  return provider === 'smartcar' ? Topics.rawSmartcar : Topics.rawTelematica;
}

/** The dead-letter topic of a source topic: `<topic>.dlq`. */
export function dlqTopic(topic: string): string {
  return `${topic}.dlq`;
}
