import { createStateCache, nextOffsetOf, type SavedState } from './state-cache';
import type { VehicleSessionState } from './session-reducer';

const NOW = 1_000_000_000;
const options = { maxEntries: 3, maxAgeMs: 60_000, deadlineMarginMs: 5_000 };

function saved(vehicleId: string, rev = 1, deadline: number | null = null): SavedState {
  const state = { vehicleId, session: deadline === null ? null : {} } as unknown as VehicleSessionState;
  return { vehicleId, rev, state, deadline };
}

describe('the state cache', () => {
  it('gives the saved states to the chunk that continues the partition, and misses the others', () => {
    const cache = createStateCache(options);
    cache.remember('t/0', '10', 'e1', [saved('a', 3), saved('b')], NOW);

    const hit = cache.lookup('t/0', '10', ['a', 'c'], NOW);
    expect(hit.epoch).toBe('e1');
    expect([...hit.hits]).toEqual([['a', { rev: 3, state: saved('a').state }]]);
    expect(hit.misses).toEqual(['c']);

    // Another start offset (another instance applied readings in between, or a gap): everything is loaded.
    expect(cache.lookup('t/0', '11', ['a'], NOW)).toMatchObject({ epoch: null, misses: ['a'] });
    expect(cache.lookup('t/0', '9', ['a'], NOW).misses).toEqual(['a']);
    // Another partition, even continuing its own chunks: not its vehicle.
    cache.remember('t/1', '5', 'e1', [saved('x')], NOW);
    expect(cache.lookup('t/1', '5', ['a', 'x'], NOW).misses).toEqual(['a']);
  });

  it('does not use an entry older than maxAgeMs, or an open session due within the margin', () => {
    const cache = createStateCache(options);
    cache.remember('t/0', '1', 'e1', [saved('old'), saved('due', 1, NOW + 10_000)], NOW);
    cache.remember('t/0', '2', 'e1', [saved('fresh', 1, NOW + 60_000 + 6_000)], NOW + 60_000);
    const at = NOW + 60_001;
    const hit = cache.lookup('t/0', '2', ['old', 'due', 'fresh'], at);
    expect(hit.misses).toEqual(['old', 'due']);
    expect([...hit.hits.keys()]).toEqual(['fresh']);
    expect(cache.lookup('t/0', '2', ['fresh'], NOW + 60_000 + 1_001).misses).toEqual(['fresh']);
  });

  it('keeps the most recently saved vehicles, and forgets all of them on a new epoch or a clear', () => {
    const cache = createStateCache(options);
    cache.remember('t/0', '1', 'e1', [saved('a'), saved('b'), saved('c')], NOW);
    cache.remember('t/0', '2', 'e1', [saved('a', 2), saved('d')], NOW);
    expect(cache.size()).toBe(3);
    expect(cache.lookup('t/0', '2', ['a', 'b', 'c', 'd'], NOW).misses).toEqual(['b']);

    cache.remember('t/1', '7', 'e2', [saved('z')], NOW);
    expect(cache.size()).toBe(1);
    expect(cache.lookup('t/0', '2', ['a'], NOW).misses).toEqual(['a']);

    cache.clear();
    expect(cache.lookup('t/1', '7', ['z'], NOW)).toMatchObject({ epoch: null, misses: ['z'] });
  });

  it('drops the entries of vehicles a chunk wrote without keeping them', () => {
    const cache = createStateCache(options);
    cache.remember('t/0', '1', 'e1', [saved('a'), saved('b')], NOW);
    cache.remember('t/0', '9', 'e1', [], NOW, ['a']);
    expect(cache.lookup('t/0', '9', ['a', 'b'], NOW).misses).toEqual(['a']);
  });

  it('with no entries allowed, keeps nothing', () => {
    const cache = createStateCache({ ...options, maxEntries: 0 });
    cache.remember('t/0', '1', 'e1', [saved('a')], NOW);
    expect(cache.lookup('t/0', '1', ['a'], NOW).misses).toEqual(['a']);
  });

  it('counts offsets as 64-bit integers', () => {
    expect(nextOffsetOf('9007199254740993')).toBe('9007199254740994');
    expect(nextOffsetOf('0')).toBe('1');
  });
});
