import { DependencyError, ValidationError } from './errors';
import { createRetryPolicy, retry, type RetryInfo } from './retry-policy';

/** A fake clock that sleeping advances, so retries run without timers. */
function aClock(startMs = 1_000) {
  let nowMs = startMs;
  const slept: number[] = [];
  return {
    now: () => nowMs,
    slept,
    sleep: async (ms: number) => {
      slept.push(ms);
      nowMs += ms;
    },
  };
}

/** A task that fails with each of `errors` in turn, then resolves with `value`. */
function aFlakyTask<T>(errors: unknown[], value: T) {
  const attempts: number[] = [];
  return {
    attempts,
    task: async (attempt: number) => {
      attempts.push(attempt);
      const error = errors[attempt - 1];
      if (error !== undefined) throw error;
      return value;
    },
  };
}

const down = () => new DependencyError('kafka_down', 'broker away');

describe('createRetryPolicy', () => {
  it('doubles the ceiling per attempt up to the cap', () => {
    const policy = createRetryPolicy({ baseDelayMs: 100, maxDelayMs: 1_000 });
    expect([0, 1, 2, 3, 4, 5, 60, 2_000].map((a) => policy.ceilingMs(a))).toEqual([
      100, 200, 400, 800, 1_000, 1_000, 1_000, 1_000,
    ]);
  });

  it('draws full jitter: uniform between zero and the ceiling', () => {
    const draws = [0, 0.5, 0.999999];
    const policy = createRetryPolicy({ baseDelayMs: 100, maxDelayMs: 1_000, random: () => draws.shift()! });
    expect(policy.delayMs(3)).toBe(0);
    expect(policy.delayMs(3)).toBe(400);
    expect(policy.delayMs(3)).toBe(799);
  });

  it('is a pure function of the attempt and the random draw', () => {
    const policy = createRetryPolicy({ baseDelayMs: 50, maxDelayMs: 400, random: () => 0.25 });
    expect(policy.delayMs(2)).toBe(policy.delayMs(2));
    expect(policy.delayMs(2)).toBe(50);
  });

  it('has defaults of 100 ms base, 30 s cap and no bounds', () => {
    const policy = createRetryPolicy();
    expect(policy).toMatchObject({ baseDelayMs: 100, maxDelayMs: 30_000, maxAttempts: Infinity });
    expect(policy.deadlineMs).toBeUndefined();
  });

  it('refuses settings that cannot make sense', () => {
    expect(() => createRetryPolicy({ baseDelayMs: 0 })).toThrow(RangeError);
    expect(() => createRetryPolicy({ baseDelayMs: 200, maxDelayMs: 100 })).toThrow(RangeError);
    expect(() => createRetryPolicy({ maxAttempts: 0 })).toThrow(RangeError);
  });
});

describe('retry', () => {
  it('retries retriable failures with the policy delays until the task succeeds', async () => {
    const clock = aClock();
    const policy = createRetryPolicy({
      baseDelayMs: 100,
      maxDelayMs: 1_000,
      random: () => 0.5,
      now: clock.now,
    });
    const flaky = aFlakyTask([down(), down(), down()], 'ok');
    const retries: RetryInfo[] = [];

    const result = await retry(flaky.task, { policy, sleep: clock.sleep, onRetry: (i) => retries.push(i) });

    expect(result).toBe('ok');
    expect(flaky.attempts).toEqual([1, 2, 3, 4]);
    expect(clock.slept).toEqual([50, 100, 200]);
    expect(retries.map((r) => [r.attempt, r.delayMs])).toEqual([
      [1, 50],
      [2, 100],
      [3, 200],
    ]);
  });

  it('does not retry a permanent error by default', async () => {
    const clock = aClock();
    const invalid = new ValidationError('bad_payload', 'no');
    const flaky = aFlakyTask([invalid], 'ok');

    await expect(retry(flaky.task, { policy: createRetryPolicy(), sleep: clock.sleep })).rejects.toBe(
      invalid,
    );
    expect(flaky.attempts).toEqual([1]);
    expect(clock.slept).toEqual([]);
  });

  it('retries errors that are not AppErrors by default (library errors may be transient)', async () => {
    const clock = aClock();
    const flaky = aFlakyTask([new Error('ECONNRESET')], 'ok');
    await expect(retry(flaky.task, { policy: createRetryPolicy(), sleep: clock.sleep })).resolves.toBe('ok');
  });

  it('asks shouldRetry with the attempt count', async () => {
    const clock = aClock();
    const seen: number[] = [];
    const last = down();
    const flaky = aFlakyTask([down(), last], 'ok');

    const outcome = retry(flaky.task, {
      policy: createRetryPolicy(),
      sleep: clock.sleep,
      shouldRetry: (_error, attempt) => {
        seen.push(attempt);
        return attempt < 2;
      },
    });

    await expect(outcome).rejects.toBe(last);
    expect(seen).toEqual([1, 2]);
  });

  it('throws the last error once maxAttempts attempts failed', async () => {
    const clock = aClock();
    const errors = [down(), down(), down()];
    const flaky = aFlakyTask(errors, 'ok');
    const policy = createRetryPolicy({ maxAttempts: 3, random: () => 0, now: clock.now });

    await expect(retry(flaky.task, { policy, sleep: clock.sleep })).rejects.toBe(errors[2]);
    expect(flaky.attempts).toEqual([1, 2, 3]);
  });

  it('starts no wait that would end after the deadline', async () => {
    const clock = aClock();
    const errors = [down(), down(), down(), down()];
    const flaky = aFlakyTask(errors, 'ok');
    // Delays 100, 200, 400 (random just under 1): 100 + 200 fit in 350 ms, 100 + 200 + 400 does not.
    const policy = createRetryPolicy({
      baseDelayMs: 100,
      deadlineMs: 350,
      random: () => 0.999999,
      now: clock.now,
    });

    await expect(retry(flaky.task, { policy, sleep: clock.sleep })).rejects.toBe(errors[2]);
    expect(clock.slept).toEqual([99, 199]);
  });

  it('stops when isStopped says so, with the last error', async () => {
    const clock = aClock();
    let stopped = false;
    const errors = [down(), down()];
    const flaky = aFlakyTask(errors, 'ok');
    const sleep = async (ms: number) => {
      await clock.sleep(ms);
      stopped = true;
    };

    await expect(
      retry(flaky.task, { policy: createRetryPolicy(), sleep, isStopped: () => stopped }),
    ).rejects.toBe(errors[0]);
    expect(flaky.attempts).toEqual([1]);
  });

  it('ends a wait when the signal aborts', async () => {
    const controller = new AbortController();
    const error = down();
    const policy = createRetryPolicy({ baseDelayMs: 60_000, maxDelayMs: 60_000, random: () => 0.999 });
    const outcome = retry(
      async () => {
        throw error;
      },
      { policy, signal: controller.signal, onRetry: () => setImmediate(() => controller.abort()) },
    );

    // A real 60 s timer would outlast the test; the abort ends the wait at once.
    await expect(outcome).rejects.toBe(error);
  });

  it('makes no attempt after the signal aborted during a failure', async () => {
    const controller = new AbortController();
    const clock = aClock();
    const flaky = aFlakyTask([down(), down()], 'ok');
    const task = async (attempt: number) => {
      controller.abort();
      return flaky.task(attempt);
    };

    await expect(
      retry(task, { policy: createRetryPolicy(), sleep: clock.sleep, signal: controller.signal }),
    ).rejects.toBeInstanceOf(DependencyError);
    expect(flaky.attempts).toEqual([1]);
    expect(clock.slept).toEqual([]);
  });
});
