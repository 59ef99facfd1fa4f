import type { Message } from 'kafkajs';
import pino from 'pino';
import { recordBytes } from '@ampflow/kafka';
import { createMetricsRegistry } from '@ampflow/observability';
import { DependencyError, ValidationError } from '@ampflow/runtime';
import { createNotifierMetrics } from '../metrics';
import { createDurableWriter, type DeadLetterInfo } from './durable-writer';
import type { WorkItem } from './work-item';

/** A writer over a producer that refuses records larger than a per-topic limit, as the reliable producer does. */
function setup(limits: Record<string, number>) {
  const written: Array<{ topic: string; message: Message }> = [];
  let calls = 0;
  const registry = createMetricsRegistry('writer-test', { defaultMetrics: false });
  const metrics = createNotifierMetrics(registry);
  const writer = createDurableWriter({
    deliveriesTopic: 'p.ampflow.notifier.deliveries',
    producer: {
      send: async (topic, messages) => {
        calls += 1;
        const limit = limits[topic];
        if (limit === undefined) throw new DependencyError('kafka_unavailable', 'broker away');
        for (const m of messages) {
          if (recordBytes(m) > limit)
            throw new ValidationError('record_too_large', `a record exceeds what ${topic} accepts`);
        }
        for (const message of messages) written.push({ topic, message });
      },
    },
    topicPrefix: 't.',
    dlqTopic: 't.dlq',
    metrics,
    logger: pino({ level: 'silent' }),
    now: () => 1_000,
  });
  const count = async (name: string) =>
    (await registry.getSingleMetric(name)!.get()).values.map((v) => [v.labels, v.value]);
  return { writer, written, count, calls: () => calls };
}

const item: WorkItem = {
  messageId: 'msg_1',
  endpointId: 'ep_1',
  type: 'vehicle.telemetry',
  body: 'x'.repeat(5_000),
  routing: { provider: 'smartcar', vehicleIds: ['smartcar:1'], userId: null, sourceId: 's1' },
  attempt: 2,
  dueAt: 1_500,
  sourceTimestampMs: 900,
  reason: 'retry',
};
const info: DeadLetterInfo = {
  reason: 'exhausted',
  attempts: 8,
  lastStatus: 500,
  lastError: 'HTTP 500',
  failedAt: 1_000,
};

describe('durable writer', () => {
  it('dead-letters a work item its retry tier refuses as too large, without retrying it', async () => {
    const t = setup({ 't.ampflow.notifier.retry.1s': 1_000, 't.dlq': 1_000_000 });
    expect(await t.writer.schedule(item)).toBe('dead_lettered');
    expect(t.calls()).toBe(2);
    expect(t.written).toHaveLength(1);
    expect(t.written[0]!.message.value!.toString()).toBe(item.body);
    expect(t.written[0]!.message.headers).toMatchObject({ 'error-code': 'record_too_large', attempts: '1' });
    expect(await t.count('notifier_oversized_records_total')).toEqual([
      [{ topic_kind: 'retry_tier', outcome: 'dead_lettered' }, 1],
    ]);
  });

  it('steps down to the smallest dead letter (ids and reason) when the DLQ refuses the larger forms', async () => {
    const t = setup({ 't.dlq': 450 });
    expect(await t.writer.deadLetter(item, { ...info, lastError: 'e'.repeat(1_000) })).toBe(true);
    expect(t.written).toHaveLength(1);
    const { message } = t.written[0]!;
    expect(message.value).toBeNull();
    expect(message.key).toBe('msg_1:ep_1');
    expect(Object.keys(message.headers!).sort()).toEqual(
      ['body-omitted', 'endpoint-id', 'error-code', 'event-type', 'failed-at', 'message-id'].sort(),
    );
    expect(message.headers).toMatchObject({ 'error-code': 'exhausted' });
    expect(await t.count('notifier_oversized_records_total')).toEqual([
      [{ topic_kind: 'dlq', outcome: 'minimal' }, 1],
    ]);
  });

  it('counts a dead letter that fits in no form as lost rather than holding the partition forever', async () => {
    const t = setup({ 't.dlq': 10 });
    expect(await t.writer.deadLetter(item, info)).toBe(true);
    expect(t.written).toHaveLength(0);
    expect(t.calls()).toBe(3);
    expect(await t.count('notifier_oversized_records_total')).toEqual([
      [{ topic_kind: 'dlq', outcome: 'lost' }, 1],
    ]);
  });

  it('abandons a write when stopping while Kafka is away (not durable, done again by the next reader)', async () => {
    const t = setup({});
    const stop = new AbortController();
    const written = t.writer.schedule(item, stop.signal);
    stop.abort();
    expect(await written).toBe('abandoned');
  });
});
