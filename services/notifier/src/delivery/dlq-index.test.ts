import { createDeadLetterIndex } from './dlq-index';

const none = new Map<number, number>();

describe('DLQ index', () => {
  it('finds every endpoint of a message, or one, and nothing for an unknown message', () => {
    const index = createDeadLetterIndex();
    index.add('msg_1', 'ep_a', 0, 10);
    index.add('msg_1', 'ep_b', 0, 11);
    index.add('msg_2', 'ep_a', 0, 12);
    expect(index.find('msg_1', undefined, none)).toEqual([
      { endpointId: 'ep_a', partition: 0, offset: 10 },
      { endpointId: 'ep_b', partition: 0, offset: 11 },
    ]);
    expect(index.find('msg_1', 'ep_b', none)).toEqual([{ endpointId: 'ep_b', partition: 0, offset: 11 }]);
    expect(index.find('msg_1', 'ep_c', none)).toEqual([]);
    expect(index.find('msg_3', undefined, none)).toEqual([]);
    expect(index.size).toBe(3);
  });

  it('keeps the latest dead letter per message and endpoint, whatever order they are added in', () => {
    const index = createDeadLetterIndex();
    index.add('msg_1', 'ep_a', 0, 10);
    index.add('msg_1', 'ep_a', 0, 40);
    index.add('msg_1', 'ep_a', 0, 25); // a replay of an older record (kafkajs restarted the tail)
    expect(index.find('msg_1', undefined, none)).toEqual([{ endpointId: 'ep_a', partition: 0, offset: 40 }]);
    expect(index.size).toBe(1);
  });

  it('follows a pair into another partition (the topic was re-partitioned)', () => {
    const index = createDeadLetterIndex();
    index.add('msg_1', 'ep_a', 0, 40);
    index.add('msg_1', 'ep_a', 2, 3);
    expect(index.find('msg_1', 'ep_a', none)).toEqual([{ endpointId: 'ep_a', partition: 2, offset: 3 }]);
  });

  it('drops positions that retention removed, when found and when pruned', () => {
    const index = createDeadLetterIndex();
    index.add('msg_old', 'ep_a', 0, 5);
    index.add('msg_mixed', 'ep_a', 0, 6);
    index.add('msg_mixed', 'ep_b', 1, 50);
    index.add('msg_new', 'ep_a', 0, 100);
    const lows = new Map([
      [0, 50],
      [1, 0],
    ]);
    expect(index.find('msg_mixed', undefined, lows)).toEqual([
      { endpointId: 'ep_b', partition: 1, offset: 50 },
    ]);
    expect(index.size).toBe(3);
    expect(index.prune(lows)).toBe(1);
    expect(index.size).toBe(2);
    expect(index.find('msg_old', undefined, none)).toEqual([]);
    expect(index.find('msg_new', undefined, lows)).toEqual([
      { endpointId: 'ep_a', partition: 0, offset: 100 },
    ]);
    expect(index.prune(lows)).toBe(0);
  });

  it('hands out copies: a caller cannot move an indexed position', () => {
    const index = createDeadLetterIndex();
    index.add('msg_1', 'ep_a', 0, 10);
    index.find('msg_1', undefined, none)[0]!.offset = 99;
    expect(index.find('msg_1', undefined, none)[0]!.offset).toBe(10);
  });
});

describe('DLQ index bound', () => {
  it('drops the messages indexed first past maxPositions, and counts what it dropped', () => {
    const index = createDeadLetterIndex({ maxPositions: 3 });
    index.add('msg_1', 'ep_a', 0, 1);
    index.add('msg_2', 'ep_a', 0, 2);
    index.add('msg_2', 'ep_b', 0, 3);
    expect(index.evicted).toBe(0);
    index.add('msg_3', 'ep_a', 0, 4);
    expect(index.find('msg_1', undefined, none)).toEqual([]);
    expect(index.size).toBe(3);
    expect(index.evicted).toBe(1);
    index.add('msg_4', 'ep_a', 0, 5);
    // msg_2 goes whole (both endpoints): a message's positions are dropped together.
    expect(index.find('msg_2', undefined, none)).toEqual([]);
    expect(index.size).toBe(2);
    expect(index.evicted).toBe(3);
    expect(index.find('msg_4', undefined, none)).toEqual([{ endpointId: 'ep_a', partition: 0, offset: 5 }]);
  });

  it('does not count positions that retention removed as evicted', () => {
    const index = createDeadLetterIndex({ maxPositions: 10 });
    index.add('msg_1', 'ep_a', 0, 1);
    expect(index.prune(new Map([[0, 5]]))).toBe(1);
    expect(index.evicted).toBe(0);
  });
});
