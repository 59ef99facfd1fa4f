import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AvroSchemaParser } from '@asyncapi/avro-schema-parser';
import {
  DiagnosticSeverity,
  Parser,
  type AsyncAPIDocumentInterface,
  type Diagnostic,
} from '@asyncapi/parser';
import { CANONICAL_SCHEMA_FILES, SCHEMAS_DIR, type CanonicalTopic } from './canonical';
import { CUSTOMER_EVENT_TYPES } from './customer-events';
import { Topics, dlqTopic } from './topics';

/** docs/asyncapi.yaml, parsed and validated the way AsyncAPI tooling reads it (Avro payloads through the plugin). */
const DOC_PATH = join(__dirname, '..', '..', '..', 'docs', 'asyncapi.yaml');

/** Every Kafka topic the code defines: the contract's constants and the dead-letter topics of consumed topics. */
const CODE_TOPICS = new Set<string>([
  ...Object.values(Topics),
  dlqTopic(Topics.rawSmartcar),
  dlqTopic(Topics.rawTelematica),
  dlqTopic(Topics.vehicleTelemetry),
]);

async function parse(text: string) {
  const parser = new Parser({ schemaParsers: [AvroSchemaParser()] });
  return parser.parse(text, { source: DOC_PATH });
}

const errorsOf = (diagnostics: Diagnostic[]) =>
  diagnostics
    .filter((d) => d.severity === DiagnosticSeverity.Error)
    .map((d) => `${d.code}: ${d.message} at ${d.path.join('.')}`);

const kafkaChannels = (document: AsyncAPIDocumentInterface) =>
  document.channels().filterBy((channel) =>
    channel
      .servers()
      .all()
      .some((s) => s.protocol() === 'kafka'),
  );

describe('docs/asyncapi.yaml', () => {
  let document: AsyncAPIDocumentInterface;

  beforeAll(async () => {
    const { document: parsed, diagnostics } = await parse(readFileSync(DOC_PATH, 'utf8'));
    expect(errorsOf(diagnostics)).toEqual([]);
    expect(parsed).toBeDefined();
    document = parsed!;
  });

  it('is AsyncAPI 3.0', () => {
    expect(document.version()).toBe('3.0.0');
  });

  it('names only Kafka topics the code defines, and every topic constant', () => {
    const addresses = kafkaChannels(document).map((c) => c.address());
    expect(addresses.filter((a) => !CODE_TOPICS.has(a ?? ''))).toEqual([]);
    expect(Object.values(Topics).filter((t) => !addresses.includes(t))).toEqual([]);
  });

  it('gives each canonical topic its .avsc file as an Avro payload', () => {
    for (const topic of Object.keys(CANONICAL_SCHEMA_FILES) as CanonicalTopic[]) {
      const channel = document
        .channels()
        .all()
        .find((c) => c.address() === topic);
      expect(channel).toBeDefined();
      const messages = channel!.messages().all();
      expect(messages).toHaveLength(1);
      const payload = messages[0]!.payload()!;
      expect(payload.schemaFormat()).toBe('application/vnd.apache.avro+json;version=1.9.0');
      const avsc = JSON.parse(readFileSync(join(SCHEMAS_DIR, CANONICAL_SCHEMA_FILES[topic]), 'utf8')) as {
        fields: Array<{ name: string }>;
      };
      // The plugin turned the referenced Avro record into a JSON Schema with one property per field.
      expect(Object.keys(payload.properties() ?? {}).sort()).toEqual(avsc.fields.map((f) => f.name).sort());
    }
  });

  it('describes one customer webhook message per event type, signed with the Standard Webhooks headers', () => {
    const webhooks = document
      .channels()
      .all()
      .find((c) => c.id() === 'customerWebhooks')!;
    const names = webhooks
      .messages()
      .all()
      .map((m) => m.name());
    expect(names.sort()).toEqual([...CUSTOMER_EVENT_TYPES].sort());
    for (const message of webhooks.messages().all()) {
      expect(Object.keys(message.headers()?.properties() ?? {})).toEqual(
        expect.arrayContaining(['webhook-id', 'webhook-timestamp', 'webhook-signature', 'svix-id']),
      );
    }
  });

  it('fails an invalid document', async () => {
    const broken = readFileSync(DOC_PATH, 'utf8').replace(
      "$ref: '#/channels/rawSmartcar'",
      "$ref: '#/channels/noSuchChannel'",
    );
    const { diagnostics } = await parse(broken);
    expect(errorsOf(diagnostics).length).toBeGreaterThan(0);
    const { diagnostics: noInfo } = await parse(readFileSync(DOC_PATH, 'utf8').replace(/^info:/m, 'inf:'));
    expect(errorsOf(noInfo).length).toBeGreaterThan(0);
  });
});
