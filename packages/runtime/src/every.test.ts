import { every } from './every';

/** A task whose runs finish only when the test says so. */
function aControlledTask() {
  const finishers: Array<() => void> = [];
  const signals: AbortSignal[] = [];
  return {
    get runs() {
      return finishers.length;
    },
    signals,
    finish: (run: number) => finishers[run]!(),
    task: (signal: AbortSignal) =>
      new Promise<void>((resolve) => {
        signals.push(signal);
        finishers.push(resolve);
      }),
  };
}

/** Errors that tests not about errors must not see; checked after each test. */
let unexpectedErrors: unknown[] = [];
const noErrors = { onError: (error: unknown) => void unexpectedErrors.push(error) };

describe('every', () => {
  beforeEach(() => {
    unexpectedErrors = [];
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
    expect(unexpectedErrors).toEqual([]);
  });

  it('runs the task every interval, the first time after one interval', async () => {
    let runs = 0;
    const periodic = every(1_000, () => void runs++, noErrors);

    await jest.advanceTimersByTimeAsync(999);
    expect(runs).toBe(0);
    await jest.advanceTimersByTimeAsync(1);
    expect(runs).toBe(1);
    await jest.advanceTimersByTimeAsync(3_000);
    expect(runs).toBe(4);
    await periodic.stop();
  });

  it('never overlaps runs: the next is scheduled an interval after the previous one finished', async () => {
    const controlled = aControlledTask();
    const periodic = every(1_000, controlled.task, noErrors);

    await jest.advanceTimersByTimeAsync(1_000);
    expect(controlled.runs).toBe(1);
    await jest.advanceTimersByTimeAsync(5_000);
    expect(controlled.runs).toBe(1);

    controlled.finish(0);
    await jest.advanceTimersByTimeAsync(999);
    expect(controlled.runs).toBe(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(controlled.runs).toBe(2);

    controlled.finish(1);
    await periodic.stop();
  });

  it('reports errors and keeps going', async () => {
    const errors: unknown[] = [];
    let runs = 0;
    const periodic = every(
      100,
      async () => {
        runs++;
        if (runs % 2 === 1) throw new Error(`run ${runs}`);
      },
      { onError: (error) => errors.push(error) },
    );

    await jest.advanceTimersByTimeAsync(400);
    expect(runs).toBe(4);
    expect(errors.map((e) => (e as Error).message)).toEqual(['run 1', 'run 3']);
    await periodic.stop();
  });

  it('keeps going when the error reporter itself throws', async () => {
    let runs = 0;
    const periodic = every(
      100,
      () => {
        runs++;
        throw new Error('boom');
      },
      {
        onError: () => {
          throw new Error('reporter broke');
        },
      },
    );

    await jest.advanceTimersByTimeAsync(300);
    expect(runs).toBe(3);
    await periodic.stop();
  });

  it('stop waits for the run in progress, aborts its signal and starts no new run', async () => {
    const controlled = aControlledTask();
    const periodic = every(1_000, controlled.task, noErrors);
    await jest.advanceTimersByTimeAsync(1_000);

    let stopped = false;
    const stopping = periodic.stop().then(() => (stopped = true));
    await jest.advanceTimersByTimeAsync(0);
    expect(controlled.signals[0]!.aborted).toBe(true);
    expect(stopped).toBe(false);

    controlled.finish(0);
    await stopping;
    await jest.advanceTimersByTimeAsync(10_000);
    expect(controlled.runs).toBe(1);
  });

  it('stop between runs cancels the next one and resolves at once', async () => {
    let runs = 0;
    const periodic = every(1_000, () => void runs++, noErrors);
    await jest.advanceTimersByTimeAsync(1_500);

    await periodic.stop();
    await jest.advanceTimersByTimeAsync(10_000);
    expect(runs).toBe(1);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('stop is idempotent', async () => {
    const periodic = every(1_000, () => undefined, noErrors);
    const first = periodic.stop();
    expect(periodic.stop()).toBe(first);
    await first;
  });
});
