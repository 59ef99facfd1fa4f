import { Ring } from './ring';

describe('Ring', () => {
  it('keeps the newest items, oldest first', () => {
    const ring = new Ring<number>(3);
    expect(ring.last()).toBeUndefined();
    for (const n of [1, 2, 3, 4, 5]) ring.push(n);
    expect(ring.toArray()).toEqual([3, 4, 5]);
    expect(ring.last()).toBe(5);
  });
});
