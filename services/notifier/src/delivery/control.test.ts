import type { AttemptView } from '../admin/delivery-control';
import type { Endpoint } from '../endpoints/model';
import type { StoredMessage } from '../fanout/fanout';
import { createDeliveryControl, type AttemptHistory } from './control';
import type { DeadLetterRecord } from './dlq-scan';
import type { DurableWriter } from './durable-writer';
import type { WorkItem } from './work-item';

const aDeadLetter = (fields: Partial<DeadLetterRecord> = {}): DeadLetterRecord => ({
  messageId: 'msg_1',
  endpointId: 'ep_a',
  type: 'vehicle.telemetry',
  body: '{"type":"vehicle.telemetry"}',
  routing: { provider: 'telematica', vehicleIds: [], userId: 'user_1', sourceId: 'evt-1' },
  sourceTimestampMs: 1_000,
  reason: 'exhausted',
  timestampMs: 2_000,
  ...fields,
});

/** A control over fakes: an empty (or given) history, endpoints `ep_a` and `ep_b`, a writer that records. */
function controlWith(options: {
  stored?: StoredMessage;
  attempts?: AttemptView[];
  deadLetters?: DeadLetterRecord[];
  /** What the writer answers (default: scheduled). */
  scheduleResult?: 'scheduled' | 'abandoned' | 'dead_lettered';
}) {
  const scheduled: WorkItem[] = [];
  /** The message log's bookkeeping and the writes, in the order they happened. */
  const events: string[] = [];
  const lookups: Array<[string, string | undefined]> = [];
  const scans: number[] = [];
  const history: AttemptHistory = {
    forEndpoint: async () => [],
    forMessage: async () => options.attempts ?? [],
    getMessage: async () => options.stored ?? null,
    deadLetters: async () => [],
    clearDeadLetter: () => undefined,
    markRequeued: (messageId, endpointId) => events.push(`requeued ${messageId} ${endpointId}`),
    markRequeueFailed: (messageId, endpointId) => events.push(`failed ${messageId} ${endpointId}`),
  };
  const writer: DurableWriter = {
    schedule: async (item) => {
      scheduled.push(item);
      events.push(`written ${item.messageId} ${item.endpointId}`);
      return options.scheduleResult ?? 'scheduled';
    },
    deadLetter: async () => true,
    deadLetterSource: async () => true,
  };
  const control = createDeliveryControl({
    history,
    endpoints: { get: (id) => (['ep_a', 'ep_b'].includes(id) ? ({ id } as Endpoint) : undefined) },
    writer,
    scan: async (sinceMs) => {
      scans.push(sinceMs);
      return [];
    },
    findDeadLetters: async (messageId, endpointId) => {
      lookups.push([messageId, endpointId]);
      return (options.deadLetters ?? []).filter(
        (r) => r.messageId === messageId && (endpointId === undefined || r.endpointId === endpointId),
      );
    },
    now: () => 5_000,
  });
  return { control, scheduled, lookups, scans, events };
}

describe('delivery control: the message log of a re-send', () => {
  it('marks the delivery pending before the re-send is written (its first attempt may be recorded before the ack)', async () => {
    const t = controlWith({ deadLetters: [aDeadLetter()] });
    await t.control.retryMessage('msg_1');
    expect(t.events).toEqual(['requeued msg_1 ep_a', 'written msg_1 ep_a']);
  });

  it('marks it dead again when Kafka did not take the re-send (503), or the retry tier refused it', async () => {
    const abandoned = controlWith({ deadLetters: [aDeadLetter()], scheduleResult: 'abandoned' });
    await expect(abandoned.control.retryMessage('msg_1')).rejects.toMatchObject({ httpStatus: 503 });
    expect(abandoned.events).toEqual(['requeued msg_1 ep_a', 'written msg_1 ep_a', 'failed msg_1 ep_a']);
    const refused = controlWith({ deadLetters: [aDeadLetter()], scheduleResult: 'dead_lettered' });
    expect(await refused.control.retryMessage('msg_1')).toEqual({ queued: 0 });
    expect(refused.events).toEqual(['requeued msg_1 ep_a', 'written msg_1 ep_a', 'failed msg_1 ep_a']);
  });
});

describe('delivery control: retry by message id', () => {
  it('re-sends what the DLQ index finds when Redis has no message, without scanning the DLQ', async () => {
    const t = controlWith({
      deadLetters: [aDeadLetter(), aDeadLetter({ endpointId: 'ep_b' }), aDeadLetter({ messageId: 'msg_2' })],
    });
    expect(await t.control.retryMessage('msg_1')).toEqual({ queued: 2 });
    expect(t.lookups).toEqual([['msg_1', undefined]]);
    expect(t.scans).toEqual([]);
    expect(t.scheduled.map((i) => [i.messageId, i.endpointId, i.attempt, i.reason, i.dueAt, i.body])).toEqual(
      [
        ['msg_1', 'ep_a', 1, 'manual_retry', 5_000, '{"type":"vehicle.telemetry"}'],
        ['msg_1', 'ep_b', 1, 'manual_retry', 5_000, '{"type":"vehicle.telemetry"}'],
      ],
    );
  });

  it('asks the index for one endpoint when given one', async () => {
    const t = controlWith({ deadLetters: [aDeadLetter(), aDeadLetter({ endpointId: 'ep_b' })] });
    expect(await t.control.retryMessage('msg_1', 'ep_b')).toEqual({ queued: 1 });
    expect(t.lookups).toEqual([['msg_1', 'ep_b']]);
    expect(t.scheduled.map((i) => i.endpointId)).toEqual(['ep_b']);
  });

  it('answers 404 message_not_found when neither Redis nor the index knows the message', async () => {
    const t = controlWith({});
    await expect(t.control.retryMessage('msg_unknown')).rejects.toMatchObject({
      code: 'message_not_found',
      httpStatus: 404,
    });
  });

  it('uses the stored message and the attempt log when Redis has them, without the index', async () => {
    const t = controlWith({
      stored: {
        id: 'msg_1',
        type: 'vehicle.telemetry',
        body: '{}',
        routing: { provider: 'telematica', vehicleIds: [], userId: null, sourceId: 'evt-1' },
        sourceTimestampMs: 1,
      },
      attempts: [
        { endpointId: 'ep_a', status: 'failed', at: '2025-01-01T00:00:00.000Z', attempt: 3 } as AttemptView,
        {
          endpointId: 'ep_b',
          status: 'succeeded',
          at: '2025-01-01T00:00:00.000Z',
          attempt: 1,
        } as AttemptView,
      ],
    });
    expect(await t.control.retryMessage('msg_1')).toEqual({ queued: 1 });
    expect(t.lookups).toEqual([]);
    expect(t.scheduled.map((i) => i.endpointId)).toEqual(['ep_a']);
  });
});
