import { isOwnedBy, ownedEndpointIds, rowsOf, scopeList, scopeMessage } from './portal-scope';

const list = {
  data: [
    { id: 'ep_a', owner: 'acme' },
    { id: 'ep_b', owner: 'globex' },
    { id: 'ep_c' },
    { id: 'ep_d', owner: 'acme' },
  ],
};

describe('portal scope', () => {
  it('owns only endpoints labelled with the owner', () => {
    expect([...ownedEndpointIds(list, 'acme')]).toEqual(['ep_a', 'ep_d']);
    expect(isOwnedBy({ id: 'ep_c' }, 'acme')).toBe(false);
    expect(isOwnedBy(null, 'acme')).toBe(false);
    expect(ownedEndpointIds({}, 'acme').size).toBe(0);
  });

  it('keeps rows of the owned endpoints only; rows naming no endpoint are dropped', () => {
    const owned = new Set(['ep_a']);
    const rows = [
      { endpointId: 'ep_a', n: 1 },
      { endpointId: 'ep_b', n: 2 },
      { n: 3 },
      { endpointIds: ['ep_b', 'ep_a'], n: 4 },
    ];
    expect(rowsOf(rows, owned)).toEqual([
      { endpointId: 'ep_a', n: 1 },
      { endpointIds: ['ep_a'], n: 4 },
    ]);
    expect(scopeList({ data: rows, nextCursor: 'x' }, owned)).toEqual({
      data: rowsOf(rows, owned),
      nextCursor: 'x',
    });
    expect(rowsOf('not a list', owned)).toEqual([]);
  });

  it('cuts the notifier’s message summaries to the owner’s endpoints', () => {
    const owned = new Set(['ep_a']);
    const summaries = [
      {
        id: 'msg_1',
        endpoints: [
          { endpointId: 'ep_a', status: 'delivered' },
          { endpointId: 'ep_b', status: 'failed' },
        ],
      },
      { id: 'msg_2', endpoints: [{ endpointId: 'ep_b', status: 'failed' }] },
    ];
    expect(rowsOf(summaries, owned)).toEqual([
      { id: 'msg_1', endpoints: [{ endpointId: 'ep_a', status: 'delivered' }] },
    ]);
    const detail = {
      id: 'msg_1',
      body: {},
      endpoints: summaries[0]!.endpoints,
      attempts: [{ endpointId: 'ep_b' }],
    };
    expect(scopeMessage(detail, owned)).toEqual({
      id: 'msg_1',
      body: {},
      endpoints: [{ endpointId: 'ep_a', status: 'delivered' }],
      attempts: [],
    });
    expect(scopeMessage({ id: 'msg_2', endpoints: summaries[1]!.endpoints, attempts: [] }, owned)).toBeNull();
  });

  it('shows a message with the owner’s attempts only, and nothing of another owner’s message', () => {
    const owned = new Set(['ep_a']);
    const message = {
      id: 'msg_1',
      endpointId: 'ep_a',
      attempts: [{ endpointId: 'ep_a' }, { endpointId: 'ep_b' }],
    };
    expect(scopeMessage(message, owned)).toEqual({ ...message, attempts: [{ endpointId: 'ep_a' }] });
    expect(
      scopeMessage({ id: 'msg_2', endpointId: 'ep_b', attempts: [{ endpointId: 'ep_b' }] }, owned),
    ).toBeNull();
    expect(scopeMessage(null, owned)).toBeNull();
  });
});
