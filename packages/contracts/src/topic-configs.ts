/**
 * The topic-level configuration of every topic the platform creates, by class of topic: the one catalogue the
 * services create their topics with and correct existing topics to (`ensureTopics` in @ampflow/kafka), that
 * `deploy/k8s/kafka-topics/topics.yaml` and the topics docker-compose.yml creates carry (test/e2e checks both),
 * and that docs/topics.md renders with the reasons. Partition counts are not here: they are the services'
 * `*_PARTITIONS` settings.
 */

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/**
 * Kafka's default `message.max.bytes`, written on every topic rather than inherited, so a broker configured
 * otherwise does not change what a topic takes (the ingress lowers its body limit to fit the raw topics).
 */
export const MAX_MESSAGE_BYTES = 1_048_588;

/**
 * What a dead letter adds to the record it copies: the six dead-letter headers, the error message cut at 1,000
 * characters (up to 4 KB of UTF-8). 64 KiB leaves room for a source topic whose records are at its limit.
 */
export const DEAD_LETTER_HEADROOM_BYTES = 64 * 1024;

/** Topic-level configs, by their Kafka names. Durations in ms, sizes in bytes; -1 means no limit. */
export interface TopicConfig {
  'cleanup.policy': 'delete' | 'compact';
  /** How long a record is kept (`delete`); -1 on compacted topics, whose latest value per key is kept. */
  'retention.ms': number;
  /** The largest record batch the broker appends. */
  'max.message.bytes': number;
  'retention.bytes'?: number;
  /** Rolls the active segment, which is never compacted, after this long. */
  'segment.ms'?: number;
  /** How long a tombstone stays after its segment is compacted. */
  'delete.retention.ms'?: number;
}

export interface TopicClass {
  /** The topics of the class, as docs/topics.md names them. */
  topics: string;
  /** Who creates them (when missing) and corrects their configs. */
  createdBy: string;
  config: TopicConfig;
  /** Why these values (docs/topics.md). */
  why: string;
}

export const TOPIC_CLASSES = {
  raw: {
    topics: '`ev.raw.smartcar.v1`, `ev.raw.telematica.v1`',
    createdBy: 'ingress (`retention.ms` = `RAW_RETENTION_MS`); the normalizer creates them when missing',
    config: {
      'cleanup.policy': 'delete',
      'retention.ms': 90 * DAY_MS,
      'max.message.bytes': MAX_MESSAGE_BYTES,
    },
    why: "the provider deliveries byte for byte: the archive `npm run ops -- reprocess` replays after a normalizer fix. 90 days is the ingress's `RAW_RETENTION_MS` default, which replaces it (-1 keeps them forever)",
  },
  canonical: {
    topics:
      '`ev.vehicle-telemetry.v1`, `ev.command-results.v1`, `ev.device-links.v1`, `ev.vehicle-errors.v1`, `ev.charging-sessions.v1`',
    createdBy: 'normalizer, session-aggregator, notifier (each the ones it writes or reads)',
    config: {
      'cleanup.policy': 'delete',
      'retention.ms': 7 * DAY_MS,
      'max.message.bytes': MAX_MESSAGE_BYTES,
    },
    why: 'derived records, rebuilt from the raw topics by `reprocess`; a week covers a consumer down over a long weekend',
  },
  deadLetter: {
    topics:
      '`<topic>.dlq` of the raw topics (normalizer) and of `ev.vehicle-telemetry.v1` (session-aggregator)',
    createdBy: 'normalizer, session-aggregator',
    config: {
      'cleanup.policy': 'delete',
      'retention.ms': 30 * DAY_MS,
      'max.message.bytes': MAX_MESSAGE_BYTES + DEAD_LETTER_HEADROOM_BYTES,
    },
    why: 'records nothing will retry by itself: time to notice, inspect and redrive (`npm run ops -- dlq`), well over the 14 days of two weekends and a holiday; the raw records they came from stay 90 days. Larger records than the source topic, for the dead-letter headers',
  },
  webhookDeliveriesDlq: {
    topics: '`ev.webhook-deliveries.dlq`',
    createdBy: 'notifier',
    config: {
      'cleanup.policy': 'delete',
      'retention.ms': 30 * DAY_MS,
      'max.message.bytes': MAX_MESSAGE_BYTES + DEAD_LETTER_HEADROOM_BYTES,
    },
    why: 'deliveries that exhausted their retries or were for a disabled endpoint: `recover` and `retry` re-send them from here. An endpoint is disabled after failing for `NOTIFIER_DISABLE_AFTER_FAILING_MS` (5 days), so its oldest dead letters are up to 5 days old when it is disabled; 30 days leaves over three weeks to fix the endpoint and recover',
  },
  notifierRetry: {
    topics: '`ampflow.notifier.retry.<1s|5s|30s|5m|30m|2h|5h|10h>`',
    createdBy: 'notifier',
    config: {
      'cleanup.policy': 'delete',
      'retention.ms': 14 * DAY_MS,
      'max.message.bytes': MAX_MESSAGE_BYTES,
    },
    why: 'deliveries waiting for their next attempt, at most 10 h while the notifier runs. The retention is how long a stopped or lagging notifier may be away without losing them: longer than the 5-day disable window plus a week',
  },
  notifierDeliveries: {
    topics: '`ampflow.notifier.deliveries`',
    createdBy: 'notifier',
    config: {
      'cleanup.policy': 'delete',
      'retention.ms': 14 * DAY_MS,
      'max.message.bytes': MAX_MESSAGE_BYTES,
    },
    why: 'deliveries due now, keyed by endpoint id, so that one partition (one notifier instance at a time) sends to each endpoint and its limits hold for the whole deployment. Read within seconds while the notifier runs; kept like the retry tiers so a stopped notifier loses none',
  },
  notifierEndpointHealth: {
    topics: '`ampflow.notifier.endpoint-health`',
    createdBy: 'notifier',
    config: {
      'cleanup.policy': 'compact',
      'retention.ms': -1,
      'max.message.bytes': MAX_MESSAGE_BYTES,
      'delete.retention.ms': DAY_MS,
    },
    why: "each endpoint's circuit and failing-since clock (the 5-day rule), written by the instance that sends to it and read whole by every instance, so a restart or a moved partition keeps them; a deleted endpoint's tombstone 1 day",
  },
  notifierEndpoints: {
    topics: '`ampflow.notifier.endpoints`',
    createdBy: 'notifier',
    config: {
      'cleanup.policy': 'compact',
      'retention.ms': -1,
      'max.message.bytes': MAX_MESSAGE_BYTES,
      'delete.retention.ms': DAY_MS,
    },
    why: "the endpoints, the source of truth every notifier instance reads whole: the latest value per endpoint kept forever; a deleted endpoint's tombstone 1 day (docs/compacted-table.md)",
  },
  stateChangelog: {
    topics: '`<AGGREGATOR_GROUP_ID>-state-changelog` (default `ampflow-session-aggregator-state-changelog`)',
    createdBy: 'session-aggregator',
    config: {
      'cleanup.policy': 'compact',
      'retention.ms': -1,
      'max.message.bytes': MAX_MESSAGE_BYTES,
      'segment.ms': HOUR_MS,
      'delete.retention.ms': DAY_MS,
    },
    why: "the latest state per vehicle, Redis's durable copy: kept forever. Segments roll hourly because the active one is never compacted, so a restore reads about one record per vehicle plus an hour of writes; an expired state's tombstone stays 1 day",
  },
  registry: {
    topics: '`kafkasql-journal`, `kafkasql-snapshots`, `registry-events`',
    createdBy: 'docker-compose.yml (`registry-topics`); the registry itself in deploy/local/stack.sh',
    config: {
      'cleanup.policy': 'delete',
      'retention.ms': -1,
      'retention.bytes': -1,
      'max.message.bytes': MAX_MESSAGE_BYTES,
    },
    why: "the schema registry's journal, replayed from its first record at every registry start: nothing may expire (compaction would keep everything anyway, every journal record has a key of its own)",
  },
} as const satisfies Record<string, TopicClass>;

export type TopicClassName = keyof typeof TOPIC_CLASSES;

/**
 * A class's configs as the admin API takes them (`{ name, value }`, values as strings), with `overrides`
 * (e.g. the raw retention the ingress is configured with) in place of the catalogue's values.
 */
export function topicConfigEntries(
  name: TopicClassName,
  overrides: Partial<TopicConfig> = {},
): { name: string; value: string }[] {
  const config: Partial<TopicConfig> = { ...TOPIC_CLASSES[name].config, ...overrides };
  return Object.entries(config).flatMap(([key, value]) =>
    value === undefined ? [] : [{ name: key, value: String(value) }],
  );
}
