import { groupIsActive, offsetsToSet, planReprocess, type PartitionOffsets } from './offset-plan';

const aPartition = (overrides: Partial<PartitionOffsets>): PartitionOffsets => ({
  topic: 'ev.raw.smartcar.v1',
  partition: 0,
  committed: 100,
  low: 0,
  high: 100,
  sinceOffset: 60,
  ...overrides,
});

describe('reprocess plan', () => {
  it('rewinds a partition past --since to the first offset at or after it', () => {
    expect(planReprocess([aPartition({})])).toEqual([
      {
        topic: 'ev.raw.smartcar.v1',
        partition: 0,
        current: 100,
        next: 60,
        action: 'rewind',
        toReprocess: 40,
        reason: 'rewind to --since',
      },
    ]);
  });

  it('never moves a partition forward: one not yet past --since keeps its position', () => {
    const [row] = planReprocess([aPartition({ committed: 50, sinceOffset: 60 })]);
    expect(row).toMatchObject({ current: 50, next: 50, action: 'unchanged', toReprocess: 0 });
  });

  it('leaves a partition without a committed offset alone', () => {
    const [row] = planReprocess([aPartition({ committed: null, low: 5 })]);
    expect(row).toMatchObject({ current: null, action: 'unchanged', toReprocess: 0 });
  });

  it('does not rewind below the first stored offset', () => {
    const [row] = planReprocess([aPartition({ low: 70, sinceOffset: 60 })]);
    expect(row).toMatchObject({ next: 70, toReprocess: 30, action: 'rewind' });
  });

  it('keeps a partition whose --since lies after every record (sinceOffset = high)', () => {
    const [row] = planReprocess([aPartition({ sinceOffset: 100 })]);
    expect(row).toMatchObject({ action: 'unchanged', next: 100 });
  });

  it('orders rows by topic and partition and groups the moves by topic', () => {
    const plan = planReprocess([
      aPartition({ topic: 'b', partition: 1 }),
      aPartition({ topic: 'a', partition: 2, committed: 10 }),
      aPartition({ topic: 'a', partition: 0 }),
    ]);
    expect(plan.map((r) => `${r.topic}/${r.partition}`)).toEqual(['a/0', 'a/2', 'b/1']);
    expect([...offsetsToSet(plan)]).toEqual([
      ['a', [{ partition: 0, offset: '60' }]],
      ['b', [{ partition: 1, offset: '60' }]],
    ]);
  });

  it('calls a group active when it has members or is rebalancing', () => {
    expect(groupIsActive({ state: 'Empty', members: [] })).toBe(false);
    expect(groupIsActive({ state: 'Dead', members: [] })).toBe(false);
    expect(groupIsActive({ state: 'Stable', members: [{}] })).toBe(true);
    expect(groupIsActive({ state: 'PreparingRebalance', members: [] })).toBe(true);
  });
});
