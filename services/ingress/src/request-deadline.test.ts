import { beforeDeadline, RequestDeadlineError, startDeadline } from './request-deadline';

/** A monotonic clock the test moves by hand. */
function aClock(startMs = 1_000) {
  let nowMs = startMs;
  return { now: () => nowMs, advance: (ms: number) => (nowMs += ms) };
}

const never = () => new Promise<never>(() => undefined);

describe('startDeadline', () => {
  it('counts down from its budget and stays at 0 once past', () => {
    const clock = aClock();
    const deadline = startDeadline(5_000, clock.now);
    expect(deadline.remainingMs()).toBe(5_000);
    clock.advance(4_999);
    expect([deadline.remainingMs(), deadline.expired()]).toEqual([1, false]);
    clock.advance(10);
    expect([deadline.remainingMs(), deadline.expired()]).toEqual([0, true]);
  });

  it('names the budget and the stage in a retriable 503', () => {
    const error = startDeadline(2_500).error('waiting for Kafka');
    expect(error).toBeInstanceOf(RequestDeadlineError);
    expect(error).toMatchObject({ code: 'deadline_exceeded', retriable: true, httpStatus: 503 });
    expect(error.message).toBe(
      'the webhook was not stored within the request deadline of 2500 ms (waiting for Kafka); retry later',
    );
  });
});

describe('beforeDeadline', () => {
  it('settles like the work when it is faster', async () => {
    const deadline = startDeadline(60_000);
    await expect(beforeDeadline(deadline, Promise.resolve('done'), 'waiting for Kafka')).resolves.toBe(
      'done',
    );
    const failure = new Error('refused');
    await expect(beforeDeadline(deadline, Promise.reject(failure), 'waiting for Kafka')).rejects.toBe(
      failure,
    );
  });

  it('rejects with deadline_exceeded for the stage once the deadline passes first', async () => {
    const deadline = startDeadline(20);
    await expect(beforeDeadline(deadline, never(), 'checking for duplicates')).rejects.toMatchObject({
      code: 'deadline_exceeded',
      stage: 'checking for duplicates',
    });
  });

  it('rejects at once when the deadline already passed, even for work that is done', async () => {
    const clock = aClock();
    const deadline = startDeadline(100, clock.now);
    clock.advance(100);
    await expect(beforeDeadline(deadline, Promise.resolve(true), 'waiting for Kafka')).rejects.toBeInstanceOf(
      RequestDeadlineError,
    );
  });
});

describe('onExpiry and clear', () => {
  it('calls every listener once, from one timer, when the deadline passes', async () => {
    const deadline = startDeadline(20);
    const calls: string[] = [];
    const spy = jest.spyOn(global, 'setTimeout');
    try {
      deadline.onExpiry(() => calls.push('body'));
      deadline.onExpiry(() => calls.push('dedup'));
      deadline.onExpiry(() => calls.push('kafka'));
      expect(spy).toHaveBeenCalledTimes(1);
    } finally {
      spy.mockRestore();
    }
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(calls).toEqual(['body', 'dedup', 'kafka']);
  });

  it('calls nothing once cleared (the request was answered)', async () => {
    const deadline = startDeadline(20);
    const calls: string[] = [];
    deadline.onExpiry(() => calls.push('late'));
    deadline.clear();
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(calls).toEqual([]);
  });
});
