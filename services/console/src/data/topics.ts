import { Topics, dlqTopic, rawTopic, type Provider } from '@ampflow/contracts';

/** The topics the console reads, with `KAFKA_TOPIC_PREFIX` put in front as every service does. */
export interface ConsoleTopics {
  raw: Record<Provider, string>;
  telemetry: string;
  commands: string;
  deviceLinks: string;
  errors: string;
  sessions: string;
  /** Dead letters of the raw topics (normalizer) and of the telemetry topic (session-aggregator). */
  sourceDeadLetters: string[];
  /** Every dead-letter topic of the platform, for the pipeline's counts. */
  deadLetters: string[];
  /** Topic name without the prefix, or undefined for a topic that is not the platform's. */
  streamOf(topic: string): string | undefined;
  /** True for a topic of the platform under this prefix (including the notifier's own). */
  isPlatformTopic(topic: string): boolean;
}

export function consoleTopics(prefix: string): ConsoleTopics {
  const p = (topic: string) => prefix + topic;
  const raw = { smartcar: p(rawTopic('smartcar')), telematica: p(rawTopic('telematica')) };
  const sourceDeadLetters = [
    dlqTopic(raw.smartcar),
    dlqTopic(raw.telematica),
    dlqTopic(p(Topics.vehicleTelemetry)),
  ];
  const known = new Set<string>([...Object.values(Topics).map(p), ...sourceDeadLetters]);
  return {
    raw,
    telemetry: p(Topics.vehicleTelemetry),
    commands: p(Topics.commandResults),
    deviceLinks: p(Topics.deviceLinks),
    errors: p(Topics.vehicleErrors),
    sessions: p(Topics.chargingSessions),
    sourceDeadLetters,
    deadLetters: [...sourceDeadLetters, p(Topics.webhookDeliveriesDlq)],
    streamOf: (topic) => (known.has(topic) ? topic.slice(prefix.length) : undefined),
    // The notifier's retry tiers and endpoints table (`ampflow.notifier.*`) are the platform's too.
    isPlatformTopic: (topic) => known.has(topic) || topic.startsWith(p('ampflow.')),
  };
}
