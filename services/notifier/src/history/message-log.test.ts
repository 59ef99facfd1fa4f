import { decodeWorkItem, encodeWorkItem } from '../delivery/work-item';
import { TEST_EVENT_TYPE, testMessage } from './message-log';

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
