import { getEventListeners } from 'node:events';
import pino from 'pino';
import { createMetricsRegistry } from '@ampflow/observability';
import type { Endpoint } from '../endpoints/model';
import { createNotifierMetrics } from '../metrics';
import { CLOSED_CIRCUIT, type CircuitState } from './circuit-breaker';
import { createDispatcher, type DispatcherSettings, type OperationalEvents } from './dispatcher';
import type { DeadLetterInfo, DurableWriter } from './durable-writer';
import type { HttpSender, SendResult } from './http-sender';
import { createOperationalEvents } from './operational';
import { retrySchedule } from './retry-schedule';
import type { WorkItem } from './work-item';

/** A dispatcher over fakes: a sender whose answers the test controls, a writer that records, a manual clock. */
function setup(
  options: {
    endpoint?: Partial<Endpoint>;
    settings?: Partial<DispatcherSettings>;
    /** This writer instead of the recording fake, and the real operational events over it. */
    writer?: DurableWriter;
    health?: Parameters<typeof createDispatcher>[0]['health'];
  } = {},
) {
  let clock = 1_000_000;
  const endpoint: Endpoint = {
    id: 'ep_1',
    url: 'https://hooks.example.com/ev',
    description: '',
    eventTypes: [],
    vehicleIds: [],
    userIds: [],
    providers: [],
    throttleRate: null,
    enabled: true,
    disabledReason: null,
    disabledAt: null,
    secrets: { current: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', previous: null },
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    ...options.endpoint,
  };
  const pending: Array<{ url: string; resolve: (r: SendResult) => void }> = [];
  const sender: HttpSender = {
    send: (req) => new Promise((resolve) => pending.push({ url: req.url, resolve })),
    close: async () => undefined,
  };
  const scheduled: WorkItem[] = [];
  const deadLetters: Array<{ item: WorkItem; info: DeadLetterInfo }> = [];
  const writer: DurableWriter = options.writer ?? {
    schedule: async (item) => {
      scheduled.push(item);
      return 'scheduled';
    },
    deadLetter: async (item, info) => {
      deadLetters.push({ item, info });
      return true;
    },
    deadLetterSource: async () => true,
  };
  const disabled: string[] = [];
  const operational: string[] = [];
  const fakeOperational: OperationalEvents = {
    endpointDisabled: async () => (operational.push('endpoint.disabled'), true),
    endpointRecovered: async () => (operational.push('endpoint.recovered'), true),
    attemptsExhausted: async () => (operational.push('message.attempt.exhausted'), true),
  };
  const registry = createMetricsRegistry('notifier-test', { defaultMetrics: false });
  const dispatcher = createDispatcher({
    health: options.health,
    settings: {
      schedule: retrySchedule({ delaysMs: [0, 1_000, 2_000], jitterRatio: 0 }),
      concurrency: 2,
      maxQueuePerEndpoint: 3,
      secretOverlapMs: 0,
      circuit: { failureThreshold: 2, cooldownMs: 10_000 },
      disableAfterFailingMs: 60_000,
      ...options.settings,
    },
    endpoints: {
      get: (id) => (id === endpoint.id ? endpoint : undefined),
      disable: async (id, reason, nowMs) => {
        disabled.push(id);
        endpoint.enabled = false;
        endpoint.disabledReason = reason;
        endpoint.disabledAt = new Date(nowMs).toISOString();
        return endpoint;
      },
    },
    sender,
    writer,
    attempts: {
      record: () => undefined,
      recordDeadLetter: () => undefined,
      clearDeadLetter: () => undefined,
    },
    operational: options.writer
      ? createOperationalEvents({ endpoints: { list: () => [endpoint] }, writer, now: () => clock })
      : fakeOperational,
    metrics: createNotifierMetrics(registry),
    logger: pino({ level: 'silent' }),
    now: () => clock,
  });
  const metric = async (name: string): Promise<number> =>
    (await registry.getSingleMetric(name)?.get())?.values[0]?.value ?? 0;
  let seq = 0;
  const item = (fields: Partial<WorkItem> = {}): WorkItem => ({
    messageId: `msg_${++seq}`,
    endpointId: endpoint.id,
    type: 'vehicle.telemetry',
    body: '{}',
    routing: { provider: 'smartcar', vehicleIds: [], userId: null, sourceId: `s${seq}` },
    attempt: 1,
    dueAt: clock,
    sourceTimestampMs: clock,
    reason: 'new',
    ...fields,
  });
  const answer = (status: number, headers: Record<string, string> = {}, durationMs = 5) =>
    pending
      .shift()!
      .resolve({ result: { kind: 'response', status, headers }, durationMs, responseExcerpt: '' });
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  return {
    dispatcher,
    endpoint,
    pending,
    scheduled,
    deadLetters,
    disabled,
    operational,
    item,
    answer,
    settle,
    metric,
    advance: (ms: number) => {
      clock += ms;
    },
  };
}

describe('dispatcher', () => {
  it('keeps at most `concurrency` attempts in flight per endpoint and moves the overflow of a full queue to a retry tier', async () => {
    const t = setup();
    const results = Array.from({ length: 7 }, () => t.dispatcher.submit(t.item()));
    await t.settle();
    // 2 in flight, 3 queued, 2 beyond the queue written to the 1 s tier without spending an attempt.
    expect(t.pending).toHaveLength(2);
    expect(t.dispatcher.queued()).toBe(3);
    expect(t.scheduled.map((i) => [i.attempt, i.reason])).toEqual([
      [1, 'deferred'],
      [1, 'deferred'],
    ]);
    for (let i = 0; i < 5; i += 1) {
      t.answer(204);
      await t.settle();
    }
    expect(await Promise.all(results)).toEqual(Array(7).fill(true));
    expect(t.dispatcher.queued()).toBe(0);
  });

  it('schedules the next attempt after a failure and dead-letters after the last', async () => {
    const t = setup({ settings: { circuit: { failureThreshold: 100, cooldownMs: 10_000 } } });
    const first = t.dispatcher.submit(t.item());
    await t.settle();
    t.answer(500);
    expect(await first).toBe(true);
    expect(t.scheduled[0]).toMatchObject({ attempt: 2, reason: 'retry', dueAt: 1_000_000 + 1_000 });
    const last = t.dispatcher.submit({ ...t.scheduled[0]!, attempt: 3 });
    await t.settle();
    t.answer(503);
    expect(await last).toBe(true);
    expect(t.deadLetters[0]!.info).toMatchObject({ reason: 'exhausted', attempts: 3, lastStatus: 503 });
    expect(t.operational).toEqual(['message.attempt.exhausted']);
  });

  it('opens the circuit after consecutive failures: queued deliveries wait in Kafka, unattempted', async () => {
    const t = setup();
    const results = [
      t.dispatcher.submit(t.item()),
      t.dispatcher.submit(t.item()),
      t.dispatcher.submit(t.item()),
    ];
    await t.settle();
    t.answer(500);
    t.answer(500);
    await Promise.all(results.slice(0, 2));
    await results[2];
    // The third never went out: it waits for the probe, with its attempt count unchanged.
    expect(t.pending).toHaveLength(0);
    const deferred = t.scheduled.filter((i) => i.reason === 'deferred');
    expect(deferred).toHaveLength(1);
    expect(deferred[0]).toMatchObject({ attempt: 1, dueAt: 1_000_000 + 10_000 });
    expect(t.dispatcher.openCircuits()).toBe(1);
    // After the cool-down one probe goes out; its success closes the circuit and reports the recovery.
    t.advance(10_000);
    const probe = t.dispatcher.submit(deferred[0]!);
    await t.settle();
    expect(t.pending).toHaveLength(1);
    t.answer(200);
    expect(await probe).toBe(true);
    expect(t.dispatcher.openCircuits()).toBe(0);
    expect(t.operational).toEqual(['endpoint.recovered']);
  });

  it('410 disables the endpoint and keeps the message; later messages are dead letters, not sent', async () => {
    const t = setup();
    const gone = t.dispatcher.submit(t.item());
    await t.settle();
    t.answer(410);
    expect(await gone).toBe(true);
    expect(t.disabled).toEqual(['ep_1']);
    expect(t.operational).toEqual(['endpoint.disabled']);
    expect(await t.dispatcher.submit(t.item())).toBe(true);
    expect(t.pending).toHaveLength(0);
    expect(t.deadLetters.map((d) => d.info.reason)).toEqual(['endpoint_gone', 'endpoint_disabled']);
  });

  it('an abort-message answer stops that message only', async () => {
    const t = setup();
    const aborted = t.dispatcher.submit(t.item());
    await t.settle();
    t.answer(400, { 'webhook-delivery': 'abort-message' });
    expect(await aborted).toBe(true);
    expect(t.deadLetters[0]!.info.reason).toBe('aborted_by_receiver');
    expect(t.scheduled).toHaveLength(0);
    expect(t.disabled).toEqual([]);
  });

  it('throttles an endpoint to its throttleRate, attempts 1/rate apart (one token banked at most)', async () => {
    const t = setup({
      endpoint: { throttleRate: 2 },
      settings: { maxQueuePerEndpoint: 100, concurrency: 10 },
    });
    // The bucket starts empty (a new owner of the endpoint adds no burst) and fills at 2 per second.
    const results = Array.from({ length: 4 }, () => t.dispatcher.submit(t.item()));
    await t.settle();
    expect(t.pending).toHaveLength(0);
    // A whole second idle banks one token, not two: no burst at the start of a second.
    t.advance(1_000);
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(t.pending).toHaveLength(1);
    t.answer(204);
    expect(t.dispatcher.queued()).toBe(3);
    // The next one after 1/rate (500 ms), then one every 500 ms.
    for (let sent = 2; sent <= 4; sent += 1) {
      t.advance(499);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(t.pending).toHaveLength(0);
      t.advance(1);
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect(t.pending).toHaveLength(1);
      t.answer(204);
    }
    expect(await Promise.all(results)).toEqual(Array(4).fill(true));
  });

  it('keeps the circuit in the health store it is given: another dispatcher over it goes on from there', async () => {
    const states = new Map<string, CircuitState>();
    const health = {
      get: (id: string) => states.get(id) ?? CLOSED_CIRCUIT,
      set: (id: string, state: CircuitState) => void states.set(id, state),
      reset: (id: string) => void states.delete(id),
      openCircuits: () => [...states.values()].filter((s) => s.status !== 'closed').length,
    };
    const first = setup({ health });
    const a = first.dispatcher.submit(first.item());
    const b = first.dispatcher.submit(first.item());
    await first.settle();
    first.answer(500);
    first.answer(500);
    await Promise.all([a, b]);
    expect(states.get('ep_1')).toMatchObject({ status: 'open', consecutiveFailures: 2 });
    expect(await first.metric('notifier_circuits_opened_total')).toBe(1);
    // The next owner (a restart, a moved partition): the circuit is open there too, nothing is attempted.
    const second = setup({ health });
    expect(second.dispatcher.circuitOf('ep_1').status).toBe('open');
    expect(await second.dispatcher.submit(second.item())).toBe(true);
    expect(second.pending).toHaveLength(0);
    expect(second.scheduled).toHaveLength(1);
    expect(await second.metric('notifier_circuits_opened_total')).toBe(0);
    second.dispatcher.resetHealth('ep_1');
    expect(states.has('ep_1')).toBe(false);
  });

  it('lets a queued delivery go (not durable) when its signal aborts', async () => {
    const t = setup({ settings: { concurrency: 1 } });
    const controller = new AbortController();
    const inFlight = t.dispatcher.submit(t.item(), controller.signal);
    const queued = t.dispatcher.submit(t.item(), controller.signal);
    await t.settle();
    controller.abort();
    expect(await queued).toBe(false);
    t.answer(204);
    expect(await inFlight).toBe(true);
  });

  it('moves deliveries for a slow endpoint to a retry tier instead of queueing them past the wait bound', async () => {
    const t = setup({ settings: { maxQueuePerEndpoint: 1_000 } });
    const first = [t.dispatcher.submit(t.item()), t.dispatcher.submit(t.item())];
    await t.settle();
    // Two answers that took 3 s each: at concurrency 2 the endpoint takes well under one delivery a second.
    t.answer(204, {}, 3_000);
    t.answer(204, {}, 3_000);
    expect(await Promise.all(first)).toEqual([true, true]);
    const later = Array.from({ length: 10 }, () => t.dispatcher.submit(t.item()));
    await t.settle();
    const deferred = t.scheduled.filter((i) => i.reason === 'deferred');
    // Two in flight, a few queued (expected wait within 2 s), the rest parked in Kafka without an attempt spent.
    expect(t.pending).toHaveLength(2);
    expect(t.dispatcher.queued()).toBeGreaterThan(0);
    expect(t.dispatcher.queued() + deferred.length).toBe(8);
    expect(deferred.length).toBeGreaterThan(0);
    expect(deferred.every((i) => i.attempt === 1 && i.dueAt >= 1_000_000 + 1_000)).toBe(true);
    // Parked ones come back later than the first: each waits for those ahead of it.
    const dues = deferred.map((i) => i.dueAt);
    expect(dues[dues.length - 1]!).toBeGreaterThan(dues[0]!);
    while (t.pending.length > 0) {
      t.answer(204);
      await t.settle();
    }
    expect((await Promise.all(later)).every(Boolean)).toBe(true);
  });

  it('keeps one abort listener per partition signal, however many deliveries went through', async () => {
    // The partition's signal lives as long as the partition stays assigned; a listener per delivery (holding the
    // work item and its body) would keep every delivered message in memory until a rebalance.
    const t = setup({ settings: { maxQueuePerEndpoint: 1_000, concurrency: 4 } });
    const partition = new AbortController();
    const results = Array.from({ length: 50 }, () => t.dispatcher.submit(t.item(), partition.signal));
    while (
      (await Promise.race([Promise.all(results).then(() => 'done'), t.settle().then(() => 'busy')])) !==
      'done'
    ) {
      while (t.pending.length > 0) t.answer(204);
    }
    expect((await Promise.all(results)).every(Boolean)).toBe(true);
    expect(getEventListeners(partition.signal, 'abort').length).toBeLessThanOrEqual(1);
  });

  it('resolves an exhausted delivery only once its operational event is written too, so a stop in between re-does it', async () => {
    // A stop that lands after the dead letter is written and before `message.attempt.exhausted` is: the partition
    // signal aborts, the event's write is abandoned. The record must not count as done, or the event is lost.
    const stop = new AbortController();
    const events: WorkItem[] = [];
    const t = setup({
      endpoint: { eventTypes: ['message.attempt.exhausted'] },
      settings: { circuit: { failureThreshold: 100, cooldownMs: 10_000 } },
      writer: {
        deadLetter: async () => {
          stop.abort();
          return true;
        },
        schedule: async (item, signal) => {
          if (signal?.aborted) return 'abandoned';
          events.push(item);
          return 'scheduled';
        },
        deadLetterSource: async () => true,
      },
    });
    const last = t.item({ attempt: 3, reason: 'retry' });
    const stopped = t.dispatcher.submit(last, stop.signal);
    await t.settle();
    t.answer(503);
    expect(await stopped).toBe(false);
    expect(events).toHaveLength(0);

    // After the restart the record is read again and done again: this time the event is written.
    const again = t.dispatcher.submit(last, new AbortController().signal);
    await t.settle();
    t.answer(503);
    expect(await again).toBe(true);
    expect(events.map((e) => e.type)).toEqual(['message.attempt.exhausted']);
  });

  it('resolves a disabling delivery only once endpoint.disabled is written; read again after a stop, it writes the event with the same id', async () => {
    // A stop that lands while `endpoint.disabled` is being written: the endpoint is already disabled in its
    // topic, so the record read again after the restart finds it disabled and never makes the attempt again.
    const stop = new AbortController();
    const abandoned: WorkItem[] = [];
    const events: WorkItem[] = [];
    const t = setup({
      endpoint: { eventTypes: ['vehicle.telemetry', 'endpoint.disabled'] },
      writer: {
        deadLetter: async () => true,
        schedule: async (item, signal) => {
          if (item.type === 'endpoint.disabled' && !signal?.aborted && abandoned.length === 0) {
            stop.abort();
            abandoned.push(item);
            return 'abandoned';
          }
          if (signal?.aborted) return 'abandoned';
          events.push(item);
          return 'scheduled';
        },
        deadLetterSource: async () => true,
      },
    });
    const gone = t.item();
    const stopped = t.dispatcher.submit(gone, stop.signal);
    await t.settle();
    t.answer(410);
    expect(await stopped).toBe(false);
    expect(t.disabled).toEqual(['ep_1']);
    expect(events).toHaveLength(0);

    const again = t.dispatcher.submit(gone, new AbortController().signal);
    await t.settle();
    expect(t.pending).toHaveLength(0);
    expect(await again).toBe(true);
    // The same retry-tier record as the abandoned one (id and due time), so its done mark recognises a repeat.
    expect(events.map((e) => [e.type, e.messageId, e.dueAt])).toEqual([
      ['endpoint.disabled', abandoned[0]!.messageId, abandoned[0]!.dueAt],
    ]);

    // Written once, it is not written again for every later message of the disabled endpoint.
    expect(await t.dispatcher.submit(t.item(), new AbortController().signal)).toBe(true);
    expect(events).toHaveLength(1);
  });

  it("writes endpoint.disabled again for a disabling within the done marks' lifetime only, and never for an operator's", async () => {
    const outcomes: Array<[string, string | null]> = [];
    for (const [reason, agoMs] of [
      ['failing', 3_600_000],
      ['failing', 3 * 24 * 3_600_000],
      ['manual', 60_000],
    ] as const) {
      const events: WorkItem[] = [];
      const t = setup({
        endpoint: {
          eventTypes: ['vehicle.telemetry', 'endpoint.disabled'],
          enabled: false,
          disabledReason: reason,
          disabledAt: new Date(1_000_000 - agoMs).toISOString(),
        },
        writer: {
          deadLetter: async () => true,
          schedule: async (item) => (events.push(item), 'scheduled'),
          deadLetterSource: async () => true,
        },
      });
      expect(await t.dispatcher.submit(t.item(), new AbortController().signal)).toBe(true);
      outcomes.push([`${reason} ${agoMs}`, events[0]?.type ?? null]);
    }
    expect(outcomes).toEqual([
      ['failing 3600000', 'endpoint.disabled'],
      ['failing 259200000', null],
      ['manual 60000', null],
    ]);
  });
});
