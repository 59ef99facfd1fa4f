import type { IHeaders } from 'kafkajs';
import {
  KNOWN_PROVIDER_EVENT_TYPES,
  RawHeaders,
  type CanonicalTopic,
  type Provider,
} from '@ampflow/contracts';
import type { AvroCodec, ConsumedRecord, RecordOutcome } from '@ampflow/kafka';
import { ValidationError, isPermanent } from '@ampflow/runtime';
import { mapRawEvent } from './mappers';
import type { NormalizerMetrics } from './metrics';

export interface NormalizeRecordDeps {
  /** Encodes with the schema registered for each canonical topic name. */
  codec: Pick<AvroCodec, 'encode'>;
  metrics: Pick<NormalizerMetrics, 'countIn' | 'countSkippedSignals' | 'mappingSeconds'>;
  /** Name of the topic each canonical stream goes to. */
  topicName: (topic: CanonicalTopic) => string;
}

function header(headers: IHeaders | undefined, name: string): string | undefined {
  const value = headers?.[name];
  if (value === undefined) return undefined;
  return (Array.isArray(value) ? value[0] : value)?.toString();
}

/**
 * The normalizer's per-record handler: reads the raw headers and JSON body, maps the provider event to its
 * canonical record and encodes it with the registered Avro schema. The outcome is the canonical record to
 * produce (keyed by the canonical id), or a dead letter for a record that can never be normalized (headers
 * missing, not JSON, unmappable, not fitting its schema). A retriable failure is thrown, to be retried.
 * Synchronous: it does no I/O (the schemas are registered at start), so no promise per record.
 */
export function createRecordNormalizer(deps: NormalizeRecordDeps): (record: ConsumedRecord) => RecordOutcome {
  const { metrics } = deps;
  return (record) => {
    try {
      return normalize(record);
    } catch (error) {
      if (isPermanent(error)) return { deadLetter: error };
      throw error;
    }
  };

  function normalize({ message }: ConsumedRecord): RecordOutcome {
    const started = process.hrtime.bigint();
    const provider = header(message.headers, RawHeaders.provider) as Provider | undefined;
    const providerEventId = header(message.headers, RawHeaders.eventId);
    const eventType = header(message.headers, RawHeaders.eventType);
    const receivedAt = Date.parse(header(message.headers, RawHeaders.receivedAt) ?? '');
    metrics.countIn(
      provider === 'smartcar' || provider === 'telematica' ? provider : 'unknown',
      eventType && KNOWN_PROVIDER_EVENT_TYPES.has(eventType) ? eventType : 'unknown',
    );
    if (!provider || !providerEventId || !eventType || Number.isNaN(receivedAt)) {
      throw new ValidationError(
        'missing_headers',
        'the record lacks provider, event-id, event-type or received-at',
      );
    }
    let body: unknown;
    try {
      body = JSON.parse(message.value?.toString('utf8') ?? '');
    } catch {
      throw new ValidationError('bad_json', 'the record value is not JSON');
    }
    const mapped = mapRawEvent({ provider, providerEventId, eventType, receivedAt, body });
    if (mapped.failedSignals > 0) metrics.countSkippedSignals(provider, 'failed', mapped.failedSignals);
    if (mapped.unknownSignals.length > 0) {
      metrics.countSkippedSignals(provider, 'unknown_code', mapped.unknownSignals.length);
    }
    const topic = deps.topicName(mapped.topic);
    const value = deps.codec.encode(topic, mapped.value);
    metrics.mappingSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    return {
      outputs: [
        {
          topic,
          message: {
            key: mapped.key,
            value,
            headers: {
              [RawHeaders.eventId]: (mapped.value as { eventId: string }).eventId,
              [RawHeaders.provider]: provider,
            },
          },
        },
      ],
    };
  }
}
