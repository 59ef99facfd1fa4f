import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CANONICAL_SCHEMA_FILES, SCHEMAS_DIR, subjectOf, type CanonicalTopic } from './canonical';
import { DeadLetterHeaders, RawHeaders } from './headers';
import { TOPIC_CLASSES, type TopicConfig } from './topic-configs';
import { Topics, dlqTopic } from './topics';

/**
 * The topic catalogue `docs/topics.md`, rendered from the topic constants and the `.avsc` files. Regenerate with
 * `npm run docs:topics`; `topics-doc.test.ts` fails when the committed file differs from this output.
 */

type AvroType = string | AvroType[] | { type: string | AvroType; [key: string]: unknown };

interface AvroField {
  name: string;
  type: AvroType;
  doc?: string;
  default?: unknown;
}

interface AvroRecord {
  type: 'record';
  name: string;
  namespace?: string;
  doc?: string;
  fields: AvroField[];
}

/** Topics a service consumes and dead-letters to `<topic>.dlq` (see the services' docs). */
const DEAD_LETTERED: ReadonlyArray<{ topic: string; by: string }> = [
  { topic: Topics.rawSmartcar, by: 'normalizer' },
  { topic: Topics.rawTelematica, by: 'normalizer' },
  { topic: Topics.vehicleTelemetry, by: 'session-aggregator' },
];

const KEYS: Record<string, string> = {
  [Topics.rawSmartcar]: 'provider vehicle id, else user id',
  [Topics.rawTelematica]: '`vehicleId`, else `chargerId`, else `user`',
  [Topics.vehicleTelemetry]: '`vehicleId`',
  [Topics.commandResults]: '`targetId`',
  [Topics.deviceLinks]: '`userId`',
  [Topics.vehicleErrors]: '`vehicleId`',
  [Topics.chargingSessions]: '`vehicleId`',
};

const cell = (text: string): string => text.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');

function constantOf(topic: string): string {
  const entry = Object.entries(Topics).find(([, name]) => name === topic);
  return entry ? `\`Topics.${entry[0]}\`` : '';
}

/** The record schema of a canonical topic, parsed from its `.avsc` file. */
export function readCanonicalSchema(topic: CanonicalTopic): AvroRecord {
  return JSON.parse(readFileSync(join(SCHEMAS_DIR, CANONICAL_SCHEMA_FILES[topic]), 'utf8')) as AvroRecord;
}

/** Walks a type, collecting the named records and enums it defines (in order of appearance). */
function collectNamed(
  type: AvroType,
  records: AvroRecord[],
  enums: Array<{ name: string; symbols: string[]; doc?: string }>,
): void {
  if (Array.isArray(type)) {
    for (const branch of type) collectNamed(branch, records, enums);
    return;
  }
  if (typeof type !== 'object' || type === null) return;
  if (type.type === 'record') {
    const record = type as unknown as AvroRecord;
    if (!records.some((r) => r.name === record.name)) {
      records.push(record);
      for (const field of record.fields) collectNamed(field.type, records, enums);
    }
  } else if (type.type === 'enum') {
    const name = type.name as string;
    if (!enums.some((e) => e.name === name)) {
      enums.push({ name, symbols: type.symbols as string[], doc: type.doc as string | undefined });
    }
  } else if (type.type === 'array') {
    collectNamed(type.items as AvroType, records, enums);
  } else if (type.type === 'map') {
    collectNamed(type.values as AvroType, records, enums);
  } else if (typeof type.type === 'object') {
    collectNamed(type.type, records, enums);
  }
}

/** A type as the catalogue writes it; a union with null is written as its other branch (optional). */
function typeText(type: AvroType): string {
  if (typeof type === 'string') return type;
  if (Array.isArray(type)) {
    const branches = type.filter((b) => b !== 'null');
    return branches.map(typeText).join(' \\| ');
  }
  switch (type.type) {
    case 'record':
      return `record ${type.name as string}`;
    case 'enum':
      return `enum ${type.name as string}`;
    case 'array':
      return `array<${typeText(type.items as AvroType)}>`;
    case 'map':
      return `map<${typeText(type.values as AvroType)}>`;
    default: {
      const base = typeof type.type === 'string' ? type.type : typeText(type.type);
      return type.logicalType ? `${base} (${type.logicalType as string})` : base;
    }
  }
}

const isOptional = (type: AvroType): boolean => Array.isArray(type) && type.includes('null');

function defaultText(field: AvroField): string {
  return field.default === undefined ? '' : `\`${JSON.stringify(field.default)}\``;
}

function fieldTable(record: AvroRecord): string[] {
  const lines = ['| field | type | optional | default | doc |', '|---|---|---|---|---|'];
  for (const field of record.fields) {
    lines.push(
      `| \`${field.name}\` | ${cell(typeText(field.type))} | ${isOptional(field.type) ? 'yes (null)' : 'no'} | ${defaultText(field)} | ${cell(field.doc ?? '')} |`,
    );
  }
  return lines;
}

function recordSection(topic: CanonicalTopic): string[] {
  const schema = readCanonicalSchema(topic);
  const records: AvroRecord[] = [];
  const enums: Array<{ name: string; symbols: string[]; doc?: string }> = [];
  collectNamed(schema as unknown as AvroType, records, enums);
  const lines = [
    `## \`${topic}\`: ${schema.name}`,
    '',
    `${schema.doc ?? ''}`,
    '',
    `Record \`${schema.namespace ? `${schema.namespace}.` : ''}${schema.name}\`, file ` +
      `\`packages/contracts/schemas/${CANONICAL_SCHEMA_FILES[topic]}\`, subject \`${subjectOf(topic)}\`, ` +
      `key ${KEYS[topic] ?? '—'}.`,
    '',
    ...fieldTable(schema),
  ];
  for (const nested of records.slice(1)) {
    lines.push('', `### ${nested.name}${nested.doc ? `: ${nested.doc}` : ''}`, '', ...fieldTable(nested));
  }
  if (enums.length > 0) {
    lines.push('', '| enum | symbols |', '|---|---|');
    for (const e of enums) lines.push(`| ${e.name} | ${e.symbols.map((s) => `\`${s}\``).join(', ')} |`);
  }
  return lines;
}

/** A duration in ms as the catalogue writes it: the value, then days or hours. */
function durationText(ms: number, unlimited = 'forever'): string {
  if (ms === -1) return `-1 (${unlimited})`;
  const day = 24 * 3_600_000;
  const unit = ms % day === 0 ? `${ms / day} day${ms === day ? '' : 's'}` : `${ms / 3_600_000} h`;
  return `${ms} (${unit})`;
}

function otherConfigsText(config: TopicConfig): string {
  const others: string[] = [];
  if (config['segment.ms'] !== undefined) others.push(`\`segment.ms\` ${durationText(config['segment.ms'])}`);
  if (config['delete.retention.ms'] !== undefined)
    others.push(`\`delete.retention.ms\` ${durationText(config['delete.retention.ms'])}`);
  if (config['retention.bytes'] !== undefined)
    others.push(`\`retention.bytes\` ${config['retention.bytes']}`);
  return others.join(', ') || '—';
}

/** The configs of every class of topic, with the reasons (`TOPIC_CLASSES`). */
function configSection(): string[] {
  const lines = [
    '## Topic configuration',
    '',
    'Every topic the platform creates, by class. The services create their topics with these topic-level configs',
    'and, at every start, change those of existing topics that differ back to them (`ensureTopics` in',
    '`@ampflow/kafka`, logging `topic configs differed from the catalogue and were changed` with the old and new',
    'values). `deploy/k8s/kafka-topics/topics.yaml` and the registry topics of docker-compose.yml carry the same',
    "(test/e2e checks both). Partition counts are the services' `*_PARTITIONS` settings; `min.insync.replicas`",
    'goes with the cluster (2 of 3 replicas in deploy/k8s).',
    '',
    '| class | topics | created by | cleanup.policy | retention.ms | max.message.bytes | other | why |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const [name, c] of Object.entries(TOPIC_CLASSES)) {
    const config: TopicConfig = c.config;
    const policy = config['cleanup.policy'];
    lines.push(
      `| \`${name}\` | ${cell(c.topics)} | ${cell(c.createdBy)} | \`${policy}\` | ` +
        `${durationText(config['retention.ms'], policy === 'compact' ? 'latest value per key kept' : 'forever')} | ` +
        `${config['max.message.bytes']} | ` +
        `${otherConfigsText(config)} | ${cell(c.why)} |`,
    );
  }
  return lines;
}

/** The whole of `docs/topics.md`. */
export function renderTopicsDoc(): string {
  const canonical = Object.keys(CANONICAL_SCHEMA_FILES) as CanonicalTopic[];
  const lines: string[] = [
    '# Topic catalogue',
    '',
    '<!-- Generated by `npm run docs:topics` (packages/contracts/src/topics-doc.ts) from packages/contracts/src/',
    '     topics.ts, topic-configs.ts, headers.ts and packages/contracts/schemas/*.avsc. Do not edit by hand:',
    '     the unit test packages/contracts/src/topics-doc.test.ts fails when this file is stale. -->',
    '',
    'The contract around these topics (who produces what, keys, ordering, guarantees) is in',
    '[contract.md](contract.md). Optional fields are unions with `null` (default `null`); timestamps are',
    '`long` `timestamp-millis` (UTC epoch milliseconds); quantities are metric with the unit in the field name.',
    '',
    '## Topics',
    '',
    '| topic | constant | value | key | dead letters |',
    '|---|---|---|---|---|',
  ];
  const dlqOf = (topic: string) => {
    const entry = DEAD_LETTERED.find((d) => d.topic === topic);
    return entry ? `\`${dlqTopic(topic)}\` (${entry.by})` : '—';
  };
  for (const topic of [Topics.rawSmartcar, Topics.rawTelematica]) {
    lines.push(
      `| \`${topic}\` | ${constantOf(topic)} | the provider's JSON body, bytes as received | ${KEYS[topic]} | ${dlqOf(topic)} |`,
    );
  }
  for (const topic of canonical) {
    const schema = readCanonicalSchema(topic);
    lines.push(
      `| \`${topic}\` | ${constantOf(topic)} | Avro \`${schema.name}\`, Confluent wire format | ${KEYS[topic] ?? '—'} | ${dlqOf(topic)} |`,
    );
  }
  lines.push(
    `| \`${Topics.webhookDeliveriesDlq}\` | ${constantOf(Topics.webhookDeliveriesDlq)} | customer webhook deliveries that exhausted their retries, were aborted by the receiver or were for a disabled endpoint (the notifier; re-sent through its admin API) | — | — |`,
    '',
    'Dead-letter topics are named `dlqTopic(topic)` = `<topic>.dlq` and keep the original key, value and headers.',
    '',
    ...configSection(),
    '',
    '## Headers',
    '',
    '| on | header | constant |',
    '|---|---|---|',
  );
  for (const [constant, header] of Object.entries(RawHeaders)) {
    lines.push(`| raw topics | \`${header}\` | \`RawHeaders.${constant}\` |`);
  }
  lines.push(
    `| canonical topics | \`${RawHeaders.eventId}\`, \`${RawHeaders.provider}\` | (the record's \`eventId\`; for sessions \`<sessionId>:<version>\`) |`,
  );
  for (const [constant, header] of Object.entries(DeadLetterHeaders)) {
    lines.push(`| dead letters (added) | \`${header}\` | \`DeadLetterHeaders.${constant}\` |`);
  }
  for (const topic of canonical) lines.push('', ...recordSection(topic));
  return `${lines.join('\n')}\n`;
}
