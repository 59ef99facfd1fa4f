import type { AttemptView } from '../admin/delivery-control';
import { CLOSED_CIRCUIT, type CircuitState } from '../delivery/circuit-breaker';
import {
  applyFilter,
  decodeCursor,
  encodeCursor,
  healthOf,
  isAfterCursor,
  lastHourMinutes,
  minuteOf,
  stateAfterAttempt,
  summaryOf,
  type MessageSummary,
} from './message-log-model';

const T = Date.parse('2026-12-06T10:00:00Z');

const anAttempt = (overrides: Partial<AttemptView> = {}): AttemptView => ({
  messageId: 'msg_a',
  endpointId: 'ep_a',
  eventType: 'vehicle.telemetry',
  attempt: 1,
  status: 'failed',
  httpStatus: 500,
  durationMs: 10,
  responseExcerpt: 'no',
  error: 'HTTP 500',
  at: new Date(T).toISOString(),
  next: 'retry',
  nextAttemptAt: new Date(T + 5_000).toISOString(),
  ...overrides,
});

describe('stateAfterAttempt', () => {
  it('maps the attempt outcome onto delivered, failed (a retry scheduled) or dead', () => {
    expect(stateAfterAttempt(anAttempt())).toEqual({
      status: 'failed',
      lastStatusCode: 500,
      nextAttemptAt: new Date(T + 5_000).toISOString(),
    });
    expect(stateAfterAttempt(anAttempt({ status: 'succeeded', httpStatus: 204, next: 'done' }))).toEqual({
      status: 'delivered',
      lastStatusCode: 204,
      nextAttemptAt: null,
    });
    for (const next of ['dead_letter', 'disabled'] as const)
      expect(stateAfterAttempt(anAttempt({ next, httpStatus: null, nextAttemptAt: null }))).toEqual({
        status: 'dead',
        lastStatusCode: null,
        nextAttemptAt: null,
      });
  });
});

describe('summaryOf and applyFilter', () => {
  const hash = {
    meta: JSON.stringify({
      type: 'vehicle.telemetry',
      vehicleIds: ['v1', 'v2'],
    }),
    's:ep_b': JSON.stringify({ status: 'delivered', lastStatusCode: 200, nextAttemptAt: null }),
    'n:ep_b': '2',
    's:ep_a': JSON.stringify({
      status: 'failed',
      lastStatusCode: null,
      nextAttemptAt: '2026-12-06T10:01:00.000Z',
    }),
    'n:ep_a': '1',
    's:ep_c': JSON.stringify({ status: 'pending', lastStatusCode: null, nextAttemptAt: null }),
  };

  it('reads the meta and each endpoint, in id order, leaving out what is unknown', () => {
    expect(summaryOf('msg_a', hash, T)).toEqual({
      id: 'msg_a',
      type: 'vehicle.telemetry',
      vehicleId: 'v1',
      createdAt: '2026-12-06T10:00:00.000Z',
      endpoints: [
        { endpointId: 'ep_a', status: 'failed', attempts: 1, nextAttemptAt: '2026-12-06T10:01:00.000Z' },
        { endpointId: 'ep_b', status: 'delivered', attempts: 2, lastStatusCode: 200 },
        { endpointId: 'ep_c', status: 'pending', attempts: 0 },
      ],
    });
    expect(summaryOf('msg_a', { 's:ep_a': hash['s:ep_a'] }, T)).toBeNull();
  });

  it('filters by type, vehicle, endpoint (showing only it) and status', () => {
    const summary = summaryOf('msg_a', hash, T) as MessageSummary;
    const vehicles = ['v1', 'v2'];
    expect(applyFilter(summary, vehicles, {})).toBe(summary);
    expect(applyFilter(summary, vehicles, { eventType: 'vehicle.error' })).toBeNull();
    expect(applyFilter(summary, vehicles, { vehicle: 'v2' })).toBe(summary);
    expect(applyFilter(summary, vehicles, { vehicle: 'v3' })).toBeNull();
    expect(applyFilter(summary, vehicles, { endpointId: 'ep_b' })?.endpoints).toEqual([
      { endpointId: 'ep_b', status: 'delivered', attempts: 2, lastStatusCode: 200 },
    ]);
    expect(applyFilter(summary, vehicles, { endpointId: 'ep_z' })).toBeNull();
    expect(applyFilter(summary, vehicles, { status: 'failed' })).toBe(summary);
    expect(applyFilter(summary, vehicles, { status: 'dead' })).toBeNull();
    expect(applyFilter(summary, vehicles, { endpointId: 'ep_b', status: 'failed' })).toBeNull();
  });
});

describe('cursors', () => {
  it('round-trip, and anything else is refused', () => {
    const cursor = { score: T, member: 'msg_%3Ax' };
    expect(decodeCursor(encodeCursor(cursor))).toEqual(cursor);
    for (const text of [
      '',
      'abc',
      Buffer.from('[1]').toString('base64url'),
      Buffer.from('["1","m"]').toString('base64url'),
    ])
      expect(decodeCursor(text)).toBeNull();
  });

  it('orders newest first, and at one score by member descending (as a reverse Redis range)', () => {
    const cursor = { score: 100, member: 'msg_m' };
    expect(isAfterCursor(99, 'msg_z', cursor)).toBe(true);
    expect(isAfterCursor(100, 'msg_a', cursor)).toBe(true);
    expect(isAfterCursor(100, 'msg_m', cursor)).toBe(false);
    expect(isAfterCursor(100, 'msg_n', cursor)).toBe(false);
    expect(isAfterCursor(101, 'msg_a', cursor)).toBe(false);
    expect(isAfterCursor(101, 'msg_a', undefined)).toBe(true);
  });
});

describe('health', () => {
  it('counts 60 one-minute buckets, the current one last', () => {
    const minutes = lastHourMinutes(T + 30_000);
    expect(minutes).toHaveLength(60);
    expect(minutes[59]).toBe(minuteOf(T));
    expect(minutes[0]).toBe(minuteOf(T) - 59);
  });

  it('a quiet closed endpoint: rate 0, nothing else', () => {
    expect(
      healthOf({ enabled: true, disabledReason: null }, CLOSED_CIRCUIT, { attempts: 0, failures: 0 }),
    ).toEqual({
      circuit: 'closed',
      failureRate1h: 0,
      attempts1h: 0,
    });
  });

  it('counts unknown (null) when they could not be read, the circuit still shown', () => {
    expect(healthOf({ enabled: true, disabledReason: null }, CLOSED_CIRCUIT, null)).toEqual({
      circuit: 'closed',
      failureRate1h: null,
      attempts1h: null,
    });
  });

  it('an open or half-open circuit with its failing-since, and a disabled reason', () => {
    const open: CircuitState = {
      status: 'half_open',
      consecutiveFailures: 7,
      openedAt: T,
      probeStartedAt: T + 60_000,
      failingSince: T - 1_000,
    };
    expect(
      healthOf({ enabled: false, disabledReason: 'failing' }, open, { attempts: 3, failures: 2 }),
    ).toEqual({
      circuit: 'half-open',
      failureRate1h: 0.6667,
      attempts1h: 3,
      failingSince: new Date(T - 1_000).toISOString(),
      disabledReason: 'failing',
    });
    expect(
      healthOf(
        { enabled: true, disabledReason: null },
        { ...open, status: 'open' },
        { attempts: 4, failures: 4 },
      ),
    ).toMatchObject({ circuit: 'open', failureRate1h: 1 });
  });
});
