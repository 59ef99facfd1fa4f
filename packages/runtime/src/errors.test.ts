import {
  AppError,
  AuthenticationError,
  DependencyError,
  ValidationError,
  isPermanent,
  toHttpError,
  withTimeout,
} from './errors';

describe('isPermanent', () => {
  it('is true for AppErrors that are not retriable, false for anything else', () => {
    expect(isPermanent(new ValidationError('bad_json', 'no'))).toBe(true);
    expect(isPermanent(new AuthenticationError('bad_signature', 'no'))).toBe(true);
    expect(isPermanent(new AppError('custom', 'no', false, 422))).toBe(true);
    expect(isPermanent(new DependencyError('kafka_down', 'away'))).toBe(false);
    expect(isPermanent(new Error('ECONNRESET'))).toBe(false);
    expect(isPermanent('a string')).toBe(false);
    expect(isPermanent(undefined)).toBe(false);
  });
});

describe('toHttpError', () => {
  it('answers an AppError with its status, code and message, anything else with a bare 500', () => {
    expect(toHttpError(new ValidationError('too_big', 'over', { httpStatus: 413 }))).toEqual({
      status: 413,
      body: { error: { code: 'too_big', message: 'over' } },
    });
    expect(toHttpError(new TypeError('secret detail'))).toEqual({
      status: 500,
      body: { error: { code: 'internal_error', message: 'internal error' } },
    });
  });
});

describe('withTimeout', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('settles like the promise when it settles in time', async () => {
    await expect(withTimeout(Promise.resolve(7), 1_000, 'late', 'the answer')).resolves.toBe(7);
    const failure = new Error('own failure');
    await expect(withTimeout(Promise.reject(failure), 1_000, 'late', 'the answer')).rejects.toBe(failure);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('rejects with a retriable DependencyError once the time is up', async () => {
    const outcome = withTimeout(
      new Promise<never>(() => undefined),
      1_000,
      'kafka_timeout',
      'Kafka did not acknowledge',
    );
    const assertion = expect(outcome).rejects.toMatchObject({
      code: 'kafka_timeout',
      retriable: true,
      httpStatus: 503,
      message: 'Kafka did not acknowledge within 1000 ms',
    });
    await jest.advanceTimersByTimeAsync(1_000);
    await assertion;
  });
});
