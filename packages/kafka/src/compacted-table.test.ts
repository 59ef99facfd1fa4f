import { applyTableRecord, isCaughtUp, readTargets } from './compacted-table';

interface Endpoint {
  url: string;
}

const decode = (value: Buffer): Endpoint => {
  const parsed = JSON.parse(value.toString()) as Partial<Endpoint>;
  if (typeof parsed.url !== 'string') throw new Error('no url');
  return { url: parsed.url };
};

function aRecord(
  key: string | null,
  value: Endpoint | string | null,
): { key: Buffer | null; value: Buffer | null } {
  return {
    key: key === null ? null : Buffer.from(key),
    value: value === null ? null : Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)),
  };
}

describe('applyTableRecord', () => {
  it('sets a key and reports the previous value', () => {
    const state = new Map<string, Endpoint>();
    expect(applyTableRecord(state, aRecord('ep-1', { url: 'https://a' }), decode)).toEqual({
      kind: 'set',
      change: { key: 'ep-1', value: { url: 'https://a' }, previous: undefined },
    });
    expect(applyTableRecord(state, aRecord('ep-1', { url: 'https://b' }), decode)).toEqual({
      kind: 'set',
      change: { key: 'ep-1', value: { url: 'https://b' }, previous: { url: 'https://a' } },
    });
    expect(state.get('ep-1')).toEqual({ url: 'https://b' });
  });

  it('removes a key on a tombstone', () => {
    const state = new Map([['ep-1', { url: 'https://a' }]]);
    expect(applyTableRecord(state, aRecord('ep-1', null), decode)).toEqual({
      kind: 'delete',
      change: { key: 'ep-1', value: undefined, previous: { url: 'https://a' } },
    });
    expect(state.has('ep-1')).toBe(false);
  });

  it('changes nothing for a tombstone of a key it does not hold', () => {
    const state = new Map([['ep-1', { url: 'https://a' }]]);
    expect(applyTableRecord(state, aRecord('ep-2', null), decode)).toEqual({ kind: 'noop' });
    expect([...state]).toEqual([['ep-1', { url: 'https://a' }]]);
  });

  it('skips a record that does not decode and keeps the previous value', () => {
    const state = new Map([['ep-1', { url: 'https://a' }]]);
    const update = applyTableRecord(state, aRecord('ep-1', '{"nope":1}'), decode);
    expect(update).toMatchObject({ kind: 'skipped', reason: 'undecodable', error: expect.any(Error) });
    expect(state.get('ep-1')).toEqual({ url: 'https://a' });
    expect(applyTableRecord(state, aRecord('ep-2', 'not json'), decode)).toMatchObject({ kind: 'skipped' });
    expect(state.has('ep-2')).toBe(false);
  });

  it('skips a record without a key', () => {
    const state = new Map<string, Endpoint>();
    expect(applyTableRecord(state, aRecord(null, { url: 'https://a' }), decode)).toEqual({
      kind: 'skipped',
      reason: 'no_key',
    });
    expect(state.size).toBe(0);
  });

  it('ends with the latest value per key when a whole log is replayed', () => {
    const state = new Map<string, Endpoint>();
    const log = [
      aRecord('a', { url: '1' }),
      aRecord('b', { url: '2' }),
      aRecord('a', null),
      aRecord('c', { url: '3' }),
      aRecord('a', { url: '4' }),
      aRecord('c', null),
    ];
    for (const record of log) applyTableRecord(state, record, decode);
    expect(Object.fromEntries(state)).toEqual({ a: { url: '4' }, b: { url: '2' } });
  });
});

describe('readTargets', () => {
  it('waits only on partitions that held records at start', () => {
    const targets = readTargets([
      { partition: 0, low: '0', high: '5' },
      { partition: 1, low: '0', high: '0' },
      { partition: 2, low: '7', high: '7' },
    ]);
    expect([...targets]).toEqual([[0, 5]]);
  });
});

describe('isCaughtUp', () => {
  it('is caught up at once when there was nothing to read', () => {
    expect(isCaughtUp(new Map(), new Map())).toBe(true);
  });

  it('is caught up once every partition reached its high watermark', () => {
    const targets = new Map([
      [0, 5],
      [1, 3],
    ]);
    expect(isCaughtUp(targets, new Map())).toBe(false);
    expect(isCaughtUp(targets, new Map([[0, 5]]))).toBe(false);
    expect(
      isCaughtUp(
        targets,
        new Map([
          [0, 5],
          [1, 2],
        ]),
      ),
    ).toBe(false);
    expect(
      isCaughtUp(
        targets,
        new Map([
          [0, 6],
          [1, 3],
        ]),
      ),
    ).toBe(true);
  });
});
