import { randomUUID } from 'node:crypto';
import { createLogger } from '@ampflow/observability';
import { testEndpoints } from '@ampflow/testing';
import Redis from 'ioredis';
import type { AttemptView, DeadLetterView } from '../src/admin/delivery-control';
import { createAttemptLog, type AttemptLogOptions, type StoredMessage } from '../src/delivery/attempt-log';
import { createDoneMarks } from '../src/delivery/done-marks';

const anAttempt = (overrides: Partial<AttemptView> = {}): AttemptView => ({
  messageId: 'msg_1',
  endpointId: 'ep_1',
  eventType: 'charging_session.started',
  attempt: 1,
  status: 'failed',
  httpStatus: 500,
  durationMs: 12,
  responseExcerpt: 'boom',
  error: null,
  at: '2026-01-01T00:00:00.000Z',
  next: 'retry',
  nextAttemptAt: '2026-01-01T00:00:05.000Z',
  ...overrides,
});

/**
 * Dead letters are indexed by when they failed, within the retention: test times are relative to each test's
 * start (a base fixed when the file loads fell out of the 60 s retention when a loaded machine ran the file slowly).
 */
let BASE_MS = Date.now() - 10_000;
beforeEach(() => {
  BASE_MS = Date.now() - 10_000;
});
const secondsAfterBase = (s: number) => new Date(BASE_MS + s * 1000).toISOString();

const aDeadLetter = (overrides: Partial<DeadLetterView> = {}): DeadLetterView => ({
  messageId: 'msg_1',
  endpointId: 'ep_1',
  eventType: 'charging_session.ended',
  reason: 'exhausted',
  lastStatus: 503,
  lastError: null,
  failedAt: secondsAfterBase(0),
  attempts: 8,
  ...overrides,
});

const aMessage = (id: string): StoredMessage => ({
  id,
  type: 'vehicle.telemetry',
  body: JSON.stringify({
    type: 'vehicle.telemetry',
    timestamp: '2026-01-01T00:00:00.000Z',
    data: { soc: 80 },
  }),
  routing: { provider: 'smartcar', vehicleIds: ['veh_1'], userId: 'user_1', sourceId: `src:${id}` },
  sourceTimestampMs: 1_767_225_600_000,
});

async function eventually(check: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('attempt log (Redis)', () => {
  let redis: Redis;
  const namespaces: string[] = [];
  const logs: Array<{ stop(): Promise<void> }> = [];

  const newLog = (options: AttemptLogOptions = {}) => {
    const namespace = `test:attempt-log:${randomUUID()}`;
    namespaces.push(namespace);
    const log = createAttemptLog(redis, { namespace, retentionMs: 60_000, ...options });
    logs.push(log);
    return { log, namespace };
  };
  const keysOf = async (namespace: string): Promise<string[]> => {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1000);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
    return keys.sort();
  };

  beforeAll(() => {
    redis = new Redis(testEndpoints().redisUrl, { lazyConnect: true });
  });

  afterEach(async () => {
    await Promise.all(logs.splice(0).map((log) => log.stop()));
    for (const namespace of namespaces.splice(0)) {
      const keys = await keysOf(namespace);
      if (keys.length > 0) await redis.del(...keys);
    }
  });

  afterAll(async () => {
    await redis.quit();
  });

  it("sends its buffered history in the done marks' round trip: one pipeline for both, nothing written twice", async () => {
    // A long interval: only the carrying write can send the history before `flush`.
    const { log, namespace } = newLog({ flushIntervalMs: 60_000 });
    const marks = createDoneMarks(redis, {
      namespace,
      ttlSeconds: 60,
      logger: createLogger({ service: 'test', level: 'silent' }),
      carry: (pipeline) => log.carry(pipeline),
    });
    log.record(anAttempt({ messageId: 'msg_carried' }));
    log.saveMessages([aMessage('msg_carried')]);
    const pipelines = jest.spyOn(redis, 'pipeline');
    try {
      marks.mark(`${namespace}:done:msg_carried:ep_1:new`, 0);
      await marks.flush();
      expect(pipelines).toHaveBeenCalledTimes(1);
    } finally {
      pipelines.mockRestore();
    }
    // Written by the marks' pipeline, before any flush of the log's own.
    expect(await redis.lrange(`${namespace}:attempts:message:msg_carried`, 0, -1)).toHaveLength(1);
    expect(await redis.get(`${namespace}:message:msg_carried`)).not.toBeNull();
    expect(await redis.get(`${namespace}:done:msg_carried:ep_1:new`)).toBe('g0');
    // Nothing left to send, and nothing sent twice.
    await log.flush();
    expect(await log.forMessage('msg_carried')).toHaveLength(1);
    expect(log.droppedWrites).toBe(0);
    // With nothing buffered, a mark goes alone.
    expect(log.carry(redis.pipeline())).toBeUndefined();
  });

  it('lists attempts per endpoint and per message, newest first, with a limit', async () => {
    const { log } = newLog();
    log.record(anAttempt({ messageId: 'msg_1', endpointId: 'ep_1', attempt: 1 }));
    log.record(anAttempt({ messageId: 'msg_2', endpointId: 'ep_1', attempt: 1 }));
    log.record(anAttempt({ messageId: 'msg_1', endpointId: 'ep_2', attempt: 1 }));
    log.record(
      anAttempt({ messageId: 'msg_1', endpointId: 'ep_1', attempt: 2, status: 'succeeded', next: 'done' }),
    );

    const ep1 = await log.forEndpoint('ep_1', 10);
    expect(ep1.map((a) => [a.messageId, a.attempt])).toEqual([
      ['msg_1', 2],
      ['msg_2', 1],
      ['msg_1', 1],
    ]);
    expect(ep1[0]).toEqual(
      anAttempt({ messageId: 'msg_1', endpointId: 'ep_1', attempt: 2, status: 'succeeded', next: 'done' }),
    );
    expect((await log.forEndpoint('ep_1', 2)).map((a) => a.attempt)).toEqual([2, 1]);
    expect(await log.forEndpoint('ep_1', 0)).toEqual([]);
    expect(await log.forEndpoint('ep_unknown', 10)).toEqual([]);

    const msg1 = await log.forMessage('msg_1');
    expect(msg1.map((a) => [a.endpointId, a.attempt])).toEqual([
      ['ep_1', 2],
      ['ep_2', 1],
      ['ep_1', 1],
    ]);
    expect(await log.forMessage('msg_unknown')).toEqual([]);
  });

  it('caps the lists, keeping the newest', async () => {
    const { log } = newLog({ endpointAttemptsCap: 5, messageAttemptsCap: 3 });
    for (let attempt = 1; attempt <= 8; attempt++) log.record(anAttempt({ attempt }));
    expect((await log.forEndpoint('ep_1', 100)).map((a) => a.attempt)).toEqual([8, 7, 6, 5, 4]);
    expect((await log.forMessage('msg_1')).map((a) => a.attempt)).toEqual([8, 7, 6]);
  });

  it('keeps message bodies for retry', async () => {
    const { log } = newLog();
    log.saveMessages([aMessage('msg_a'), aMessage('msg:b/with odd chars')]);
    expect(await log.getMessage('msg_a')).toEqual(aMessage('msg_a'));
    expect(await log.getMessage('msg:b/with odd chars')).toEqual(aMessage('msg:b/with odd chars'));
    expect(await log.getMessage('msg_unknown')).toBeNull();
  });

  it('gives every key the retention as TTL', async () => {
    const { log, namespace } = newLog({ retentionMs: 120_000 });
    log.record(anAttempt());
    log.saveMessages([aMessage('msg_1')]);
    log.recordDeadLetter(aDeadLetter());
    await log.flush();

    const keys = await keysOf(namespace);
    expect(keys).toEqual(
      [
        `${namespace}:attempts:endpoint:ep_1`,
        `${namespace}:attempts:message:msg_1`,
        `${namespace}:message:msg_1`,
        `${namespace}:dead-letters`,
        `${namespace}:dead-letters:endpoint:ep_1`,
        `${namespace}:dead-letter:ep_1:msg_1`,
      ].sort(),
    );
    for (const key of keys) {
      const ttl = await redis.pttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(120_000);
    }
  });

  it('lists dead letters newest first, in all or per endpoint, replaces a repeat and clears one', async () => {
    const { log, namespace } = newLog();
    log.recordDeadLetter(
      aDeadLetter({ messageId: 'msg_1', endpointId: 'ep_1', failedAt: secondsAfterBase(1) }),
    );
    log.recordDeadLetter(
      aDeadLetter({ messageId: 'msg_2', endpointId: 'ep_2', failedAt: secondsAfterBase(2) }),
    );
    log.recordDeadLetter(
      aDeadLetter({ messageId: 'msg_3', endpointId: 'ep_1', failedAt: secondsAfterBase(3) }),
    );
    log.recordDeadLetter(
      aDeadLetter({ messageId: 'msg_1', endpointId: 'ep_2', failedAt: secondsAfterBase(4) }),
    );
    const ids = (views: DeadLetterView[]) => views.map((v) => `${v.endpointId}/${v.messageId}`);

    expect(ids(await log.deadLetters({ limit: 10 }))).toEqual([
      'ep_2/msg_1',
      'ep_1/msg_3',
      'ep_2/msg_2',
      'ep_1/msg_1',
    ]);
    expect(ids(await log.deadLetters({ limit: 2 }))).toEqual(['ep_2/msg_1', 'ep_1/msg_3']);
    expect(ids(await log.deadLetters({ endpointId: 'ep_1', limit: 10 }))).toEqual([
      'ep_1/msg_3',
      'ep_1/msg_1',
    ]);
    expect(await log.deadLetters({ endpointId: 'ep_none', limit: 10 })).toEqual([]);

    // A repeat (re-sent, failed again) replaces the entry and moves it to the top.
    log.recordDeadLetter(
      aDeadLetter({
        messageId: 'msg_1',
        endpointId: 'ep_1',
        failedAt: secondsAfterBase(5),
        attempts: 9,
      }),
    );
    const all = await log.deadLetters({ limit: 10 });
    expect(ids(all)).toEqual(['ep_1/msg_1', 'ep_2/msg_1', 'ep_1/msg_3', 'ep_2/msg_2']);
    expect(all[0]).toEqual(
      aDeadLetter({
        messageId: 'msg_1',
        endpointId: 'ep_1',
        failedAt: secondsAfterBase(5),
        attempts: 9,
      }),
    );

    log.clearDeadLetter('msg_1', 'ep_1');
    expect(ids(await log.deadLetters({ limit: 10 }))).toEqual(['ep_2/msg_1', 'ep_1/msg_3', 'ep_2/msg_2']);
    expect(ids(await log.deadLetters({ endpointId: 'ep_1', limit: 10 }))).toEqual(['ep_1/msg_3']);
    expect(await redis.exists(`${namespace}:dead-letter:ep_1:msg_1`)).toBe(0);
  });

  it('caps the dead-letter index, keeping the newest', async () => {
    const { log } = newLog({ deadLetterCap: 2 });
    for (let i = 1; i <= 4; i++) {
      log.recordDeadLetter(aDeadLetter({ messageId: `msg_${i}`, failedAt: secondsAfterBase(i) }));
    }
    expect((await log.deadLetters({ limit: 10 })).map((d) => d.messageId)).toEqual(['msg_4', 'msg_3']);
    expect((await log.deadLetters({ endpointId: 'ep_1', limit: 10 })).map((d) => d.messageId)).toEqual([
      'msg_4',
      'msg_3',
    ]);
  });

  it('does not index a dead letter older than the retention, and skips entries whose record expired', async () => {
    const { log, namespace } = newLog({ retentionMs: 60_000 });
    log.recordDeadLetter(
      aDeadLetter({ messageId: 'msg_old', failedAt: new Date(Date.now() - 120_000).toISOString() }),
    );
    log.recordDeadLetter(aDeadLetter({ messageId: 'msg_1', failedAt: secondsAfterBase(1) }));
    log.recordDeadLetter(aDeadLetter({ messageId: 'msg_2', failedAt: secondsAfterBase(2) }));
    expect((await log.deadLetters({ limit: 10 })).map((d) => d.messageId)).toEqual(['msg_2', 'msg_1']);

    await redis.del(`${namespace}:dead-letter:ep_1:msg_2`);
    expect((await log.deadLetters({ limit: 10 })).map((d) => d.messageId)).toEqual(['msg_1']);
    expect((await log.deadLetters({ endpointId: 'ep_1', limit: 10 })).map((d) => d.messageId)).toEqual([
      'msg_1',
    ]);
  });

  it('writes a buffer on its own after the flush interval, and at once when a batch is full', async () => {
    const { log: timed, namespace: timedNs } = newLog({ flushIntervalMs: 20 });
    timed.record(anAttempt());
    await eventually(async () => (await redis.llen(`${timedNs}:attempts:endpoint:ep_1`)) === 1);

    // A flush interval longer than the test: only a full batch can have been sent.
    const { log: batched, namespace: batchedNs } = newLog({ flushIntervalMs: 600_000, maxBatch: 5 });
    for (let attempt = 1; attempt <= 5; attempt++) batched.record(anAttempt({ attempt }));
    await eventually(async () => (await redis.llen(`${batchedNs}:attempts:endpoint:ep_1`)) === 5);
  });

  it('drops a batch Redis refuses, counts it, logs once, and never rejects', async () => {
    const lines: string[] = [];
    const logger = createLogger({
      service: 'notifier-test',
      level: 'info',
      destination: { write: (line: string) => void lines.push(line) },
    });
    // Never connected and no offline queue: every command fails at once.
    const offline = new Redis(testEndpoints().redisUrl, { lazyConnect: true, enableOfflineQueue: false });
    try {
      const log = createAttemptLog(offline, { namespace: `test:attempt-log:${randomUUID()}`, logger });
      log.record(anAttempt());
      log.saveMessages([aMessage('msg_1'), aMessage('msg_2')]);
      await expect(log.flush()).resolves.toBeUndefined();
      expect(log.droppedWrites).toBe(3);
      log.recordDeadLetter(aDeadLetter());
      await log.stop();
      expect(log.droppedWrites).toBe(4);
      const warnings = lines
        .map((l) => JSON.parse(l) as { level: string; msg: string })
        .filter((l) => l.level === 'warn');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]?.msg).toMatch(/history writes dropped/);
    } finally {
      offline.disconnect();
    }
  });
});
