import type { Kafka, ProducerBatch } from 'kafkajs';
import { createReliableProducer, type ReliableProducerOptions } from './producer';

/** A broker stand-in: every produce request waits until the test acknowledges or fails it. */
function fakeKafka() {
  const requests: { batch: ProducerBatch; ack: () => void; fail: (err: Error) => void }[] = [];
  const producer = {
    events: { CONNECT: 'producer.connect', DISCONNECT: 'producer.disconnect' },
    on: () => () => {},
    connect: async () => {},
    disconnect: async () => {},
    sendBatch: (batch: ProducerBatch) =>
      new Promise<void>((resolve, reject) => requests.push({ batch, ack: resolve, fail: reject })),
  };
  const admin = {
    connect: async () => {},
    disconnect: async () => {},
    describeConfigs: async () => ({
      resources: [{ configEntries: [{ configName: 'max.message.bytes', configValue: '1048588' }] }],
    }),
  };
  const kafka = { producer: () => producer, admin: () => admin } as unknown as Kafka;
  const recordsOf = (i: number) =>
    requests[i]!.batch.topicMessages!.flatMap((t) => t.messages.map((m) => String(m.value)));
  return { kafka, requests, recordsOf };
}

/** Tracks whether a promise settled, without awaiting it. */
function watch(promise: Promise<void>) {
  const state = { settled: false, error: undefined as unknown };
  promise.then(
    () => (state.settled = true),
    (err: unknown) => {
      state.settled = true;
      state.error = err;
    },
  );
  return state;
}

describe('ReliableProducer linger', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  async function setUp(options: ReliableProducerOptions) {
    const broker = fakeKafka();
    const producer = createReliableProducer(broker.kafka, options);
    await producer.connect();
    return { ...broker, producer };
  }
  const record = (value: string) => ({ key: 'k', value });

  it('sends at once without a linger (the default)', async () => {
    const { producer, requests } = await setUp({});
    const sent = watch(producer.send('t', [record('a')]));
    await jest.advanceTimersByTimeAsync(0);
    expect(requests).toHaveLength(1);
    expect(sent.settled).toBe(false);
    requests[0]!.ack();
    await jest.advanceTimersByTimeAsync(0);
    expect(sent).toEqual({ settled: true, error: undefined });
  });

  it('gathers what arrives within the linger into one request, and answers each only after its ack', async () => {
    const { producer, requests, recordsOf } = await setUp({ lingerMs: 5 });
    const first = watch(producer.send('t', [record('a')]));
    await jest.advanceTimersByTimeAsync(2);
    const second = watch(producer.send('t', [record('b')]));
    const third = watch(producer.send('u', [record('c')]));
    await jest.advanceTimersByTimeAsync(2);
    expect(requests).toHaveLength(0);
    await jest.advanceTimersByTimeAsync(1);
    expect(requests).toHaveLength(1);
    expect(recordsOf(0)).toEqual(['a', 'b', 'c']);
    expect(requests[0]!.batch.acks).toBe(-1);
    await jest.advanceTimersByTimeAsync(50);
    expect([first.settled, second.settled, third.settled]).toEqual([false, false, false]);
    requests[0]!.ack();
    await jest.advanceTimersByTimeAsync(0);
    expect([first, second, third].map((s) => s.settled && s.error === undefined)).toEqual([true, true, true]);
  });

  it('fails every record of a lingered request that the broker refused', async () => {
    const { producer, requests } = await setUp({ lingerMs: 5 });
    const sends = [watch(producer.send('t', [record('a')])), watch(producer.send('t', [record('b')]))];
    await jest.advanceTimersByTimeAsync(5);
    requests[0]!.fail(Object.assign(new Error('refused'), { type: 'UNKNOWN' }));
    await jest.advanceTimersByTimeAsync(0);
    for (const s of sends) expect(s.error).toMatchObject({ code: 'kafka_unavailable' });
  });

  it('cuts the linger short once lingerBytes are waiting', async () => {
    const { producer, requests, recordsOf } = await setUp({ lingerMs: 1_000, lingerBytes: 250 });
    void producer.send('t', [record('x'.repeat(100))]);
    await jest.advanceTimersByTimeAsync(0);
    expect(requests).toHaveLength(0);
    void producer.send('t', [record('y'.repeat(100))]);
    void producer.send('t', [record('z'.repeat(100))]);
    await jest.advanceTimersByTimeAsync(0);
    expect(requests).toHaveLength(1);
    expect(recordsOf(0).map((v) => v[0])).toEqual(['x', 'y', 'z']);
  });

  it('sends what queued behind a request in flight as soon as it settles, without a new linger', async () => {
    const { producer, requests, recordsOf } = await setUp({ lingerMs: 5 });
    void producer.send('t', [record('a')]);
    await jest.advanceTimersByTimeAsync(5);
    expect(requests).toHaveLength(1);
    const later = watch(producer.send('t', [record('b')]));
    await jest.advanceTimersByTimeAsync(20);
    expect(requests).toHaveLength(1);
    requests[0]!.ack();
    await jest.advanceTimersByTimeAsync(0);
    expect(requests).toHaveLength(2);
    expect(recordsOf(1)).toEqual(['b']);
    expect(later.settled).toBe(false);
    requests[1]!.ack();
    await jest.advanceTimersByTimeAsync(0);
    expect(later).toEqual({ settled: true, error: undefined });
    // The producer is idle again: the next record lingers.
    void producer.send('t', [record('c')]);
    await jest.advanceTimersByTimeAsync(4);
    expect(requests).toHaveLength(2);
    await jest.advanceTimersByTimeAsync(1);
    expect(requests).toHaveLength(3);
  });

  it('sends lingering records at once on disconnect', async () => {
    const { producer, requests } = await setUp({ lingerMs: 60_000 });
    const sent = watch(producer.send('t', [record('a')]));
    await jest.advanceTimersByTimeAsync(0);
    const closing = producer.disconnect(10_000);
    await jest.advanceTimersByTimeAsync(0);
    expect(requests).toHaveLength(1);
    requests[0]!.ack();
    await closing;
    expect(sent).toEqual({ settled: true, error: undefined });
  });

  it('paces requests: a record into a producer quiet for the interval goes at once, later ones gather until it passed', async () => {
    const { producer, requests, recordsOf } = await setUp({ requestIntervalMs: 5 });
    void producer.send('t', [record('a')]);
    await jest.advanceTimersByTimeAsync(0);
    expect(requests).toHaveLength(1);
    requests[0]!.ack();
    await jest.advanceTimersByTimeAsync(1);
    void producer.send('t', [record('b')]);
    await jest.advanceTimersByTimeAsync(1);
    void producer.send('u', [record('c')]);
    await jest.advanceTimersByTimeAsync(2);
    expect(requests).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(requests).toHaveLength(2);
    expect(recordsOf(1)).toEqual(['b', 'c']);
    requests[1]!.ack();
    // Quiet for longer than the interval: the next record goes out at once.
    await jest.advanceTimersByTimeAsync(20);
    void producer.send('t', [record('d')]);
    await jest.advanceTimersByTimeAsync(0);
    expect(requests).toHaveLength(3);
  });

  it('does not hold a paced request back once a request worth of bytes waits, nor on disconnect', async () => {
    const { producer, requests } = await setUp({ requestIntervalMs: 1_000, lingerBytes: 250 });
    void producer.send('t', [record('a')]);
    await jest.advanceTimersByTimeAsync(0);
    requests[0]!.ack();
    await jest.advanceTimersByTimeAsync(0);
    void producer.send('t', [record('x'.repeat(100))]);
    await jest.advanceTimersByTimeAsync(0);
    expect(requests).toHaveLength(1);
    void producer.send('t', [record('y'.repeat(100)), record('z'.repeat(100))]);
    await jest.advanceTimersByTimeAsync(0);
    expect(requests).toHaveLength(2);
    requests[1]!.ack();
    await jest.advanceTimersByTimeAsync(0);
    const last = watch(producer.send('t', [record('w')]));
    await jest.advanceTimersByTimeAsync(0);
    expect(requests).toHaveLength(2);
    const closing = producer.disconnect(10_000);
    await jest.advanceTimersByTimeAsync(0);
    expect(requests).toHaveLength(3);
    requests[2]!.ack();
    await closing;
    expect(last).toEqual({ settled: true, error: undefined });
  });
});
