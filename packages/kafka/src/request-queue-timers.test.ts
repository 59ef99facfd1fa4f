import { timeoutCheckPeriodMs } from './request-queue-timers';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const RequestQueue = require('kafkajs/src/network/requestQueue');

const silent = { debug() {}, info() {}, warn() {}, error() {} };

function queue(requestTimeout = 1_000, connected = () => true) {
  const q = new RequestQueue({
    maxInFlightRequests: null,
    requestTimeout,
    enforceRequestTimeout: true,
    clientId: 'test',
    broker: '127.0.0.1:1',
    logger: silent,
    isConnected: connected,
  });
  q.scheduleRequestTimeoutCheck();
  return q;
}

let correlationId = 0;
function request(q: InstanceType<typeof RequestQueue>) {
  const outcome: { resolved?: unknown; rejected?: Error } = {};
  const entry = {
    correlationId: ++correlationId,
    apiKey: 1,
    apiName: 'Fetch',
    apiVersion: 11,
    resolve: (value: unknown) => (outcome.resolved = value),
    reject: (error: Error) => (outcome.rejected = error),
  };
  q.push({ entry, expectResponse: true, sendRequest: () => {} });
  return { id: entry.correlationId, outcome };
}

describe('kafkajs request queue timers', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('keeps no timer while nothing is in flight', () => {
    const q = queue();
    expect(q.requestTimeoutIntervalId ?? null).toBeNull();
    expect(jest.getTimerCount()).toBe(0);
  });

  it('checks for timeouts while a request is in flight, and stops once none is', () => {
    const q = queue(1_000);
    const { id, outcome } = request(q);
    expect(jest.getTimerCount()).toBe(1);
    q.fulfillRequest({ correlationId: id, payload: Buffer.alloc(0), size: 0 });
    expect(outcome.resolved).toBeDefined();
    // No throttle timer after an answer, and the timeout check ends at its next tick.
    jest.advanceTimersByTime(timeoutCheckPeriodMs(1_000));
    expect(jest.getTimerCount()).toBe(0);
  });

  it('still times out a request that gets no answer', () => {
    const q = queue(1_000);
    const { outcome } = request(q);
    jest.advanceTimersByTime(1_000);
    expect(outcome.rejected).toBeUndefined();
    jest.advanceTimersByTime(timeoutCheckPeriodMs(1_000) + 1);
    expect(outcome.rejected?.name).toBe('KafkaJSRequestTimeoutError');
    expect(q.inflight.size).toBe(0);
    jest.advanceTimersByTime(timeoutCheckPeriodMs(1_000));
    expect(jest.getTimerCount()).toBe(0);
  });

  it('stops checking a queue whose connection went away', () => {
    let connected = true;
    const q = queue(1_000, () => connected);
    request(q);
    connected = false;
    jest.advanceTimersByTime(timeoutCheckPeriodMs(1_000));
    expect(jest.getTimerCount()).toBe(0);
  });

  it('looks again at held-back requests only when some wait', () => {
    const q = new RequestQueue({
      maxInFlightRequests: 1,
      requestTimeout: 1_000,
      enforceRequestTimeout: false,
      clientId: 'test',
      broker: '127.0.0.1:1',
      logger: silent,
    });
    const first = request(q);
    const second = request(q);
    expect(q.pending).toHaveLength(1);
    q.fulfillRequest({ correlationId: first.id, payload: Buffer.alloc(0), size: 0 });
    expect(q.pending).toHaveLength(0);
    q.fulfillRequest({ correlationId: second.id, payload: Buffer.alloc(0), size: 0 });
    expect(second.outcome.resolved).toBeDefined();
    jest.runOnlyPendingTimers();
    expect(jest.getTimerCount()).toBe(0);
  });

  it('checks a tenth of the timeout, between 100 ms and 1 s', () => {
    expect(timeoutCheckPeriodMs(500)).toBe(100);
    expect(timeoutCheckPeriodMs(5_000)).toBe(500);
    expect(timeoutCheckPeriodMs(30_000)).toBe(1_000);
  });
});
