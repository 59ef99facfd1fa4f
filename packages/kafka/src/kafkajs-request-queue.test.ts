import { fixKafkajsRequestQueueTimer, kafkajsRequestQueue } from './kafkajs-request-queue';

/** A kafkajs RequestQueue as a broker connection builds it, with no instrumentation and a silent logger. */
function aQueue() {
  const RequestQueue = kafkajsRequestQueue() as unknown as new (options: object) => {
    pending: unknown[];
    throttledUntil: number;
    throttleCheckTimeoutId: NodeJS.Timeout | null;
    checkPendingRequests(): void;
  };
  const logger = {
    debug: () => undefined,
    warn: () => undefined,
    error: () => undefined,
    info: () => undefined,
  };
  return new RequestQueue({
    maxInFlightRequests: 1,
    requestTimeout: 1_000,
    enforceRequestTimeout: false,
    clientId: 'test',
    broker: '127.0.0.1:9092',
    logger,
  });
}

describe("kafkajs's request queue timer", () => {
  afterEach(() => jest.useRealTimers());

  it('arms no timer while no request is pending (kafkajs alone re-arms a 1 ms one for ever)', () => {
    fixKafkajsRequestQueueTimer();
    fixKafkajsRequestQueueTimer();
    const queue = aQueue();
    queue.checkPendingRequests();
    expect(queue.throttleCheckTimeoutId).toBeNull();
  });

  it('still checks the queue again when a pending request waits out a throttle', () => {
    jest.useFakeTimers();
    fixKafkajsRequestQueueTimer();
    const queue = aQueue();
    const sent: string[] = [];
    queue.throttledUntil = Date.now() + 500;
    queue.pending.push({ send: () => sent.push('sent'), expectResponse: true });
    queue.checkPendingRequests();
    expect(queue.throttleCheckTimeoutId).not.toBeNull();
    expect(sent).toEqual([]);
    jest.advanceTimersByTime(501);
    expect(sent).toEqual(['sent']);
    expect(queue.pending).toEqual([]);
  });
});
