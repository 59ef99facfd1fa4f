import { Registry } from 'prom-client';
import { Topics, type CanonicalTopic } from '@ampflow/contracts';
import { isDeadLetter, type ConsumedRecord, type RecordOutcome } from '@ampflow/kafka';
import { DependencyError, ValidationError } from '@ampflow/runtime';
import { fixtureBytes } from '@ampflow/testing';
import { createNormalizerMetrics } from './metrics';
import { createRecordNormalizer } from './normalize-record';

const topicName = (t: CanonicalTopic) => `test.${t}`;

/** A codec that records what it was asked to encode; `fail` makes it throw instead. */
function aFakeCodec(fail?: Error) {
  const encoded: Array<{ topic: string; value: unknown }> = [];
  return {
    encoded,
    encode(topic: string, value: unknown): Buffer {
      if (fail) throw fail;
      encoded.push({ topic, value });
      return Buffer.from(`avro:${topic}`);
    },
  };
}

function aRawRecord(
  fixture: string,
  headers: Record<string, string | undefined> = {},
  value: Buffer = fixtureBytes(fixture),
): ConsumedRecord {
  const body = JSON.parse(fixtureBytes(fixture).toString('utf8')) as {
    eventId?: string;
    type?: string;
    eventType?: string;
  };
  const provider = fixture.startsWith('smartcar/') ? 'smartcar' : 'telematica';
  const all: Record<string, string | undefined> = {
    provider,
    'event-id': provider === 'smartcar' ? body.eventId : 'msg_unit',
    'event-type': provider === 'smartcar' ? body.eventType : body.type,
    'received-at': '2025-08-05T06:00:00.000Z',
    ...headers,
  };
  const defined = Object.fromEntries(Object.entries(all).filter(([, v]) => v !== undefined)) as Record<
    string,
    string
  >;
  return {
    topic: `raw.${provider}`,
    partition: 0,
    message: { key: null, value, headers: defined, offset: '0', timestamp: '0', attributes: 0 },
  };
}

function setup(fail?: Error) {
  const registry = new Registry();
  const metrics = createNormalizerMetrics(registry);
  const codec = aFakeCodec(fail);
  return { codec, registry, normalize: createRecordNormalizer({ codec, metrics, topicName }) };
}

const reasonOf = (outcome: RecordOutcome) =>
  isDeadLetter(outcome) ? (outcome.deadLetter as ValidationError).code : 'not dead-lettered';

describe('normalizing one raw record', () => {
  it('maps a Smartcar vehicle state to one encoded telemetry record on the named topic, keyed by vehicle', async () => {
    const { codec, normalize, registry } = setup();
    const outcome = await normalize(aRawRecord('smartcar/vehicle-state-v4.json'));

    expect(isDeadLetter(outcome)).toBe(false);
    const [output, ...rest] = isDeadLetter(outcome) ? [] : outcome.outputs;
    expect(rest).toEqual([]);
    const telemetry = codec.encoded[0]?.value as { vehicleId: string; eventId: string; provider: string };
    expect(codec.encoded).toHaveLength(1);
    expect(codec.encoded[0]?.topic).toBe(`test.${Topics.vehicleTelemetry}`);
    expect(output).toEqual({
      topic: `test.${Topics.vehicleTelemetry}`,
      message: {
        key: telemetry.vehicleId,
        value: Buffer.from(`avro:test.${Topics.vehicleTelemetry}`),
        headers: { 'event-id': telemetry.eventId, provider: 'smartcar' },
      },
    });
    expect(telemetry.vehicleId).toMatch(/^smartcar:/);
    const counted = await registry.getSingleMetricAsString('normalizer_records_in_total');
    expect(counted).toContain('provider="smartcar",event_type="VEHICLE_STATE"} 1');
  });

  it('maps a Telematica command to the command results topic', async () => {
    const { normalize } = setup();
    const outcome = await normalize(aRawRecord('telematica/vehicle-charging-command.json'));
    expect(isDeadLetter(outcome) ? [] : outcome.outputs.map((o) => o.topic)).toEqual([
      `test.${Topics.commandResults}`,
    ]);
  });

  it.each([
    ['missing_headers', aRawRecord('smartcar/vehicle-state-v4.json', { 'event-id': undefined })],
    ['missing_headers', aRawRecord('smartcar/vehicle-state-v4.json', { 'received-at': 'yesterday' })],
    ['bad_json', aRawRecord('smartcar/vehicle-state-v4.json', {}, Buffer.from('{"eventId": '))],
    [
      'unknown_event_type',
      aRawRecord('smartcar/vehicle-state-v4.json', { 'event-type': 'VEHICLE_TELEPORTED' }),
    ],
    ['schema_mismatch', aRawRecord('smartcar/vehicle-state-v4.json', {}, Buffer.from('{"data": 1}'))],
  ])('dead-letters a record that can never be normalized (%s)', async (reason, record) => {
    const { codec, normalize } = setup();
    expect(reasonOf(await normalize(record))).toBe(reason);
    expect(codec.encoded).toEqual([]);
  });

  it('dead-letters a canonical record that does not fit its Avro schema', async () => {
    const { normalize } = setup(new ValidationError('encode_failed', 'invalid vehicleId'));
    expect(reasonOf(await normalize(aRawRecord('smartcar/vehicle-state-v4.json')))).toBe('encode_failed');
  });

  it('throws a retriable failure, so the record is tried again rather than dead-lettered', async () => {
    const unavailable = new DependencyError('registry_unavailable', 'away');
    const { normalize } = setup(unavailable);
    expect(() => normalize(aRawRecord('smartcar/vehicle-state-v4.json'))).toThrow(unavailable);
  });
});
