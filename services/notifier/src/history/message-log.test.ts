import { AppError } from '@ampflow/runtime';
import { CLOSED_CIRCUIT } from '../delivery/circuit-breaker';
import { decodeWorkItem, encodeWorkItem } from '../delivery/work-item';
import type { MessageIndex, MessageQuery } from './message-index';
import { TEST_EVENT_TYPE, createMessageLog, testMessage } from './message-log';
import type { DeliveryStatus, MessageCursor, MessageSummary } from './message-log-model';

const T = Date.parse('2026-12-06T10:00:00Z');

describe('testMessage', () => {
  it('is an endpoint.test message for that endpoint only, as stored and as a first-attempt work item', () => {
    const { message, item } = testMessage('ep_a', T, 'n1');
    expect(message.id).toMatch(/^msg_[a-z2-7]{32}$/);
    expect(message).toMatchObject({ type: TEST_EVENT_TYPE, endpointIds: ['ep_a'], sourceTimestampMs: T });
    expect(JSON.parse(message.body)).toEqual({
      type: 'endpoint.test',
      timestamp: new Date(T).toISOString(),
      data: { endpointId: 'ep_a', message: expect.any(String), sentAt: new Date(T).toISOString() },
    });
    expect(item).toEqual({
      messageId: message.id,
      endpointId: 'ep_a',
      type: 'endpoint.test',
      body: message.body,
      routing: message.routing,
      attempt: 1,
      dueAt: T,
      sourceTimestampMs: T,
      reason: 'new',
    });
    // Travels through the retry tiers like any delivery.
    expect(decodeWorkItem(encodeWorkItem(item))).toEqual(item);
  });

  it('gets a new id per call (a nonce), so two tests are two messages', () => {
    expect(testMessage('ep_a', T, 'n1').message.id).not.toBe(testMessage('ep_a', T, 'n2').message.id);
    expect(testMessage('ep_a', T, 'n1').message.id).not.toBe(testMessage('ep_b', T, 'n1').message.id);
  });
});

describe('createMessageLog: bulk retry', () => {
  const summary = (id: string, endpoints: Array<[string, DeliveryStatus]>): MessageSummary => ({
    id,
    type: 'vehicle.telemetry',
    createdAt: new Date(T).toISOString(),
    endpoints: endpoints.map(([endpointId, status]) => ({ endpointId, status, attempts: 1 })),
  });

  /** A message log over a fake index serving `pages` in turn, recording the retries asked for. */
  function aLog(
    pages: Array<{ data: MessageSummary[]; nextCursor?: MessageCursor }>,
    fail?: (id: string) => Error | undefined,
  ) {
    const queries: MessageQuery[] = [];
    const retries: Array<[string, string | undefined]> = [];
    const index = {
      async list(query: MessageQuery) {
        queries.push(query);
        return pages.shift() ?? { data: [] };
      },
    } as unknown as MessageIndex;
    const log = createMessageLog({
      index,
      circuitOf: () => CLOSED_CIRCUIT,
      writer: { schedule: async () => 'scheduled' as const },
      async retryMessage(messageId, endpointId) {
        const error = fail?.(messageId);
        if (error) throw error;
        retries.push([messageId, endpointId]);
        return { queued: 1 };
      },
      now: () => T,
    });
    return { log, queries, retries };
  }

  it('re-sends each failed or dead delivery of the matching messages, one message retry per endpoint', async () => {
    const { log, retries, queries } = aLog([
      {
        data: [
          summary('msg_1', [
            ['ep_a', 'dead'],
            ['ep_b', 'delivered'],
            ['ep_c', 'failed'],
          ]),
          summary('msg_2', [['ep_a', 'pending']]),
        ],
        nextCursor: { score: T, member: 'msg_2' },
      },
      { data: [summary('msg_3', [['ep_a', 'dead']])] },
    ]);
    expect(await log.retryMatching({ eventType: 'vehicle.telemetry', sinceMs: T - 1, limit: 10 })).toEqual({
      retried: 3,
    });
    expect(retries).toEqual([
      ['msg_1', 'ep_a'],
      ['msg_1', 'ep_c'],
      ['msg_3', 'ep_a'],
    ]);
    expect(queries[0]).toMatchObject({ eventType: 'vehicle.telemetry', sinceMs: T - 1 });
    expect(queries[1]!.cursor).toEqual({ score: T, member: 'msg_2' });
  });

  it('keeps to the status asked for and to the limit of messages', async () => {
    const { log, retries } = aLog([
      {
        data: [
          summary('msg_1', [['ep_a', 'failed']]),
          summary('msg_2', [['ep_a', 'dead']]),
          summary('msg_3', [['ep_a', 'dead']]),
          summary('msg_4', [['ep_a', 'dead']]),
        ],
      },
    ]);
    expect(await log.retryMatching({ status: 'dead', limit: 2 })).toEqual({ retried: 2 });
    expect(retries).toEqual([
      ['msg_2', 'ep_a'],
      ['msg_3', 'ep_a'],
    ]);
  });

  it('skips a message that is gone (404), fails on anything else (Kafka)', async () => {
    const gone = aLog(
      [{ data: [summary('msg_gone', [['ep_a', 'dead']]), summary('msg_2', [['ep_a', 'dead']])] }],
      (id) => (id === 'msg_gone' ? new AppError('message_not_found', 'gone', false, 404) : undefined),
    );
    expect(await gone.log.retryMatching({ limit: 10 })).toEqual({ retried: 1 });
    const down = aLog(
      [{ data: [summary('msg_1', [['ep_a', 'dead']])] }],
      () => new AppError('kafka_unavailable', 'down', true, 503),
    );
    await expect(down.log.retryMatching({ limit: 10 })).rejects.toMatchObject({ code: 'kafka_unavailable' });
  });
});
