import { createPartitionProgress } from './partition-progress';

describe('partition progress', () => {
  it('commits nothing before a record was taken', () => {
    expect(createPartitionProgress().committable()).toBeNull();
  });

  it('commits after the longest finished prefix when records finish out of order', () => {
    const progress = createPartitionProgress();
    for (const offset of [10n, 11n, 12n, 13n]) progress.take(offset);
    expect(progress.committable()).toBe(10n);
    progress.finish(12n);
    progress.finish(11n);
    expect(progress.committable()).toBe(10n);
    progress.finish(10n);
    expect(progress.committable()).toBe(13n);
    progress.finish(13n);
    expect(progress.committable()).toBe(14n);
    expect(progress.outstanding).toBe(0);
  });

  it('knows which offsets it has already taken, across gaps left by compaction or transactions', () => {
    const progress = createPartitionProgress();
    progress.take(5n);
    progress.take(9n);
    expect(progress.isNew(9n)).toBe(false);
    expect(progress.isNew(10n)).toBe(true);
    expect(() => progress.take(7n)).toThrow(/taken after/);
  });

  it('ignores a finish of an offset it does not hold, and keeps working past many records', () => {
    const progress = createPartitionProgress();
    progress.finish(3n);
    for (let offset = 0n; offset < 5_000n; offset += 1n) progress.take(offset);
    for (let offset = 4_999n; offset >= 1n; offset -= 1n) progress.finish(offset);
    expect(progress.committable()).toBe(0n);
    progress.finish(0n);
    expect(progress.committable()).toBe(5_000n);
    progress.take(5_000n);
    expect(progress.committable()).toBe(5_000n);
  });
});
