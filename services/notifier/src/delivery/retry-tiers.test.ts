import { RETRY_TIERS, retryTopic, tierFor } from './retry-tiers';
import { decodeWorkItem, encodeWorkItem, workItemKey, type WorkItem } from './work-item';

describe('retry tiers', () => {
  it('puts a delay in the largest tier not above it', () => {
    expect(tierFor(0).label).toBe('1s');
    expect(tierFor(999).label).toBe('1s');
    expect(tierFor(5_000).label).toBe('5s');
    expect(tierFor(4 * 60_000).label).toBe('30s');
    expect(tierFor(36 * 3_600_000).label).toBe('10h');
  });

  it('keeps the tiers in increasing order, each a distinct topic', () => {
    const delays = RETRY_TIERS.map((t) => t.delayMs);
    expect([...delays].sort((a, b) => a - b)).toEqual(delays);
    const topics = new Set(RETRY_TIERS.map((t) => retryTopic('bench.', t)));
    expect(topics.size).toBe(RETRY_TIERS.length);
    expect([...topics][0]).toBe('bench.ampflow.notifier.retry.1s');
  });
});

describe('work items', () => {
  const item: WorkItem = {
    messageId: 'msg_abc',
    endpointId: 'ep_1',
    type: 'vehicle.telemetry',
    body: '{"type":"vehicle.telemetry"}',
    routing: { provider: 'smartcar', vehicleIds: ['smartcar:v1'], userId: null, sourceId: 'e1' },
    attempt: 3,
    dueAt: 1_700_000_000_000,
    sourceTimestampMs: 1_699_999_999_000,
    reason: 'retry',
  };

  it('round-trips through its record value, keyed by message and endpoint', () => {
    expect(decodeWorkItem(encodeWorkItem(item))).toEqual(item);
    expect(workItemKey(item)).toBe('msg_abc:ep_1');
  });

  it('refuses a value that is not a work item', () => {
    expect(() => decodeWorkItem(null)).toThrow(/no value/);
    expect(() => decodeWorkItem(Buffer.from('{"v":2}'))).toThrow(/not a work item/);
    expect(() => decodeWorkItem(Buffer.from('not json'))).toThrow();
  });
});
