import { classifyAttempt, decideOutcome, isEndpointFailure, type AttemptResult } from './outcome';
import { retrySchedule } from './retry-schedule';

const NOW = Date.parse('2026-11-26T10:00:00.000Z');
const response = (status: number, headers: Record<string, string | string[]> = {}): AttemptResult => ({
  kind: 'response',
  status,
  headers,
});

describe('classifyAttempt', () => {
  it.each([
    ['200', response(200), { kind: 'success', status: 200 }],
    ['204', response(204), { kind: 'success', status: 204 }],
    [
      '2xx with an abort header is still success',
      response(200, { 'webhook-delivery': 'abort-message' }),
      { kind: 'success', status: 200 },
    ],
    ['410 Gone', response(410), { kind: 'endpoint_gone', status: 410 }],
    [
      'abort-message on a 500',
      response(500, { 'Webhook-Delivery': ' Abort-Message ' }),
      { kind: 'aborted', status: 500 },
    ],
    [
      'another webhook-delivery value',
      response(500, { 'webhook-delivery': 'retry' }),
      { kind: 'failure', reason: 'http_status', status: 500 },
    ],
    [
      '301 (redirects are not followed)',
      response(301, { location: 'https://x' }),
      { kind: 'failure', reason: 'http_status', status: 301 },
    ],
    ['400', response(400), { kind: 'failure', reason: 'http_status', status: 400 }],
    [
      '429 with Retry-After seconds',
      response(429, { 'retry-after': '30' }),
      { kind: 'failure', reason: 'http_status', status: 429, retryAfterMs: 30_000 },
    ],
    [
      '503 with an HTTP-date',
      response(503, { 'Retry-After': 'Thu, 26 Nov 2026 10:01:00 GMT' }),
      { kind: 'failure', reason: 'http_status', status: 503, retryAfterMs: 60_000 },
    ],
    [
      '503 with a header array',
      response(503, { 'retry-after': ['5', '9'] }),
      { kind: 'failure', reason: 'http_status', status: 503, retryAfterMs: 5_000 },
    ],
    [
      '429 with a garbage Retry-After',
      response(429, { 'retry-after': 'later' }),
      { kind: 'failure', reason: 'http_status', status: 429 },
    ],
    [
      '500 ignores Retry-After',
      response(500, { 'retry-after': '30' }),
      { kind: 'failure', reason: 'http_status', status: 500 },
    ],
    ['a timeout', { kind: 'timeout' }, { kind: 'failure', reason: 'timeout', status: null }],
    [
      'a connection error',
      { kind: 'network_error', code: 'ECONNREFUSED' },
      { kind: 'failure', reason: 'network_error', status: null },
    ],
  ] as const)('%s', (_c, result, expected) => {
    expect(classifyAttempt(result as AttemptResult, NOW)).toEqual(expected);
  });
});

describe('decideOutcome', () => {
  const schedule = retrySchedule({ jitterRatio: 0 });
  const decide = (result: AttemptResult, attempt: number) =>
    decideOutcome(classifyAttempt(result, NOW), attempt, NOW, schedule);

  it.each([
    ['2xx is delivered', response(200), 1, { action: 'delivered' }],
    ['410 disables the endpoint', response(410), 1, { action: 'disable_endpoint' }],
    [
      'abort-message dead-letters the message',
      response(400, { 'webhook-delivery': 'abort-message' }),
      1,
      { action: 'dead_letter', reason: 'aborted_by_receiver' },
    ],
    [
      'a first failure retries after 5 s',
      response(500),
      1,
      { action: 'retry', attemptNumber: 2, atMs: NOW + 5_000, delayMs: 5_000 },
    ],
    [
      'a timeout retries on the schedule',
      { kind: 'timeout' },
      3,
      { action: 'retry', attemptNumber: 4, atMs: NOW + 1_800_000, delayMs: 1_800_000 },
    ],
    [
      '429 honours Retry-After',
      response(429, { 'retry-after': '60' }),
      1,
      { action: 'retry', attemptNumber: 2, atMs: NOW + 60_000, delayMs: 60_000 },
    ],
    ['the eighth failure is exhausted', response(500), 8, { action: 'dead_letter', reason: 'exhausted' }],
  ] as const)('%s', (_c, result, attempt, expected) => {
    expect(decide(result as AttemptResult, attempt)).toEqual(expected);
  });
});

describe('isEndpointFailure', () => {
  it.each([
    [response(200), false],
    [response(400, { 'webhook-delivery': 'abort-message' }), false],
    [response(410), true],
    [response(503), true],
    [{ kind: 'timeout' } as const, true],
  ])('%#', (result, expected) => {
    expect(isEndpointFailure(classifyAttempt(result, NOW))).toBe(expected);
  });
});
