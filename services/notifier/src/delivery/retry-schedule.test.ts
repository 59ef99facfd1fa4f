import {
  DEFAULT_RETRY_SCHEDULE_MS,
  nextAttempt,
  parseDurationList,
  parseRetryAfter,
  retrySchedule,
} from './retry-schedule';

const NOW = Date.parse('2026-11-26T10:00:00.000Z');
const mid = () => 0.5; // no jitter
const low = () => 0; // -20 %
const high = () => 0.999999; // just under +20 %

describe('nextAttempt', () => {
  const schedule = retrySchedule();

  it('follows Svix: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h', () => {
    expect(DEFAULT_RETRY_SCHEDULE_MS).toEqual([0, 5e3, 3e5, 18e5, 72e5, 18e6, 36e6, 36e6]);
    const delays = [1, 2, 3, 4, 5, 6, 7].map((failed) => nextAttempt(schedule, failed, NOW, { random: mid }));
    expect(delays.map((d) => (d.kind === 'retry' ? d.delayMs : null))).toEqual([
      5e3, 3e5, 18e5, 72e5, 18e6, 36e6, 36e6,
    ]);
    expect(delays[0]).toEqual({
      kind: 'retry',
      attemptNumber: 2,
      atMs: NOW + 5e3,
      delayMs: 5e3,
      retryAfterApplied: false,
    });
  });

  it('is exhausted after the eighth attempt', () => {
    expect(nextAttempt(schedule, 8, NOW)).toEqual({ kind: 'exhausted', attempts: 8 });
  });

  it.each([
    ['lowest', low, 4_000],
    ['highest', high, 6_000],
  ])('jitters by ±20 %%: %s draw', (_c, random, expected) => {
    const next = nextAttempt(schedule, 1, NOW, { random });
    expect(next.kind === 'retry' && next.delayMs).toBe(expected);
  });

  it('stays within ±20 % for any draw', () => {
    for (let i = 0; i < 200; i++) {
      const next = nextAttempt(schedule, 2, NOW);
      expect(next.kind).toBe('retry');
      if (next.kind === 'retry') {
        expect(next.delayMs).toBeGreaterThanOrEqual(240_000);
        expect(next.delayMs).toBeLessThanOrEqual(360_000);
      }
    }
  });

  it.each([
    ['lengthens the step', 1, 60_000, 60_000, true],
    ['never shortens it', 2, 1_000, 300_000, false],
    ['is capped at 1 h', 1, 6 * 3_600_000, 3_600_000, true],
    ['a step beyond the cap still wins', 5, 60_000, 18e6, false],
    ['a negative one is ignored', 1, -5, 5_000, false],
  ])('Retry-After %s', (_c, failed, retryAfterMs, delayMs, applied) => {
    const next = nextAttempt(schedule, failed, NOW, { retryAfterMs, random: mid });
    expect(next).toMatchObject({ kind: 'retry', delayMs, atMs: NOW + delayMs, retryAfterApplied: applied });
  });

  it('does not extend an exhausted schedule for a Retry-After', () => {
    expect(nextAttempt(schedule, 8, NOW, { retryAfterMs: 1_000 }).kind).toBe('exhausted');
  });

  it('takes a configured schedule, jitter and cap (fast tests)', () => {
    const fast = retrySchedule({ delaysMs: [0, 50, 100], jitterRatio: 0, retryAfterMaxMs: 200 });
    expect(nextAttempt(fast, 1, NOW)).toMatchObject({ delayMs: 50 });
    expect(nextAttempt(fast, 2, NOW, { retryAfterMs: 10_000 })).toMatchObject({ delayMs: 200 });
    expect(nextAttempt(fast, 3, NOW).kind).toBe('exhausted');
  });

  it.each([
    ['an empty list', { delaysMs: [] }],
    ['a negative delay', { delaysMs: [0, -1] }],
    ['jitter of 100 %', { jitterRatio: 1 }],
  ])('refuses %s', (_c, options) => {
    expect(() => retrySchedule(options)).toThrow();
  });
});

describe('parseRetryAfter', () => {
  it.each([
    ['120', 120_000],
    [' 0 ', 0],
    ['Thu, 26 Nov 2026 10:02:00 GMT', 120_000],
    ['Thursday, 26-Nov-26 10:00:30 GMT', 30_000],
    ['Thu Nov 26 10:00:10 2026', 10_000 - new Date(NOW).getTimezoneOffset() * 60_000],
    ['Wed, 25 Nov 2026 10:00:00 GMT', 0],
    ['-5', undefined],
    ['1.5', undefined],
    ['', undefined],
    ['soon', undefined],
    [undefined, undefined],
    [null, undefined],
  ])('%p → %p ms', (header, expected) => {
    expect(parseRetryAfter(header, NOW)).toBe(expected);
  });
});

describe('parseDurationList', () => {
  it.each([
    ['0,5s,5m,30m,2h,5h,10h,10h', [...DEFAULT_RETRY_SCHEDULE_MS]],
    ['0, 50, 100ms, 1.5s, 1d', [0, 50, 100, 1_500, 86_400_000]],
  ])('%s', (text, expected) => {
    expect(parseDurationList(text)).toEqual(expected);
  });

  it.each(['', '5s,,5m', '5x', '-1s', 's'])('refuses %p', (text) => {
    expect(() => parseDurationList(text)).toThrow();
  });
});
