import { createRequire } from 'node:module';
import { installRequestQueueFix } from './request-queue-fix';
// Loading the producer installs the fix.
import './producer';

const RequestQueue = createRequire(__filename)('kafkajs/src/network/requestQueue') as {
  prototype: { scheduleCheckPendingRequests(this: unknown): void };
};

describe('kafkajs RequestQueue idle timer fix', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  const queueState = (pending: unknown[], throttledUntil: number) => ({
    pending,
    throttledUntil,
    throttleCheckTimeoutId: null as unknown,
    checkPendingRequests: jest.fn(),
  });

  it('is installed once (producer.ts installs it on load)', () => {
    expect(installRequestQueueFix()).toBe(false);
  });

  it('schedules nothing when no request is pending and nothing is throttled', () => {
    const queue = queueState([], -1);
    RequestQueue.prototype.scheduleCheckPendingRequests.call(queue);
    expect(jest.getTimerCount()).toBe(0);
    expect(queue.throttleCheckTimeoutId).toBeNull();
  });

  it('still checks pending requests, and the end of a throttle, as kafkajs does', () => {
    const pending = queueState([{}], -1);
    RequestQueue.prototype.scheduleCheckPendingRequests.call(pending);
    expect(jest.getTimerCount()).toBe(1);
    jest.advanceTimersByTime(10);
    expect(pending.checkPendingRequests).toHaveBeenCalledTimes(1);

    const throttled = queueState([], Date.now() + 50);
    RequestQueue.prototype.scheduleCheckPendingRequests.call(throttled);
    jest.advanceTimersByTime(49);
    expect(throttled.checkPendingRequests).not.toHaveBeenCalled();
    jest.advanceTimersByTime(1);
    expect(throttled.checkPendingRequests).toHaveBeenCalledTimes(1);
  });
});
