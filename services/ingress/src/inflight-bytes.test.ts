import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import { admitBody, bodyReservationBytes, createByteBudget, IngressBusyError } from './inflight-bytes';

const LIMIT = 1_000;

describe('bodyReservationBytes', () => {
  it.each<[string, IncomingHttpHeaders, number]>([
    ['a declared length', { 'content-length': '300' }, 300],
    ['a declared length at the body limit', { 'content-length': '1000' }, 1_000],
    ['a declared length over the body limit (413 without buffering)', { 'content-length': '1001' }, 0],
    ['an empty body', { 'content-length': '0' }, 0],
    ['no length and no chunked framing (no body)', {}, 0],
    ['a chunked body (length unknown)', { 'transfer-encoding': 'chunked' }, LIMIT],
    ['a gzip body (inflates up to the limit)', { 'content-length': '10', 'content-encoding': 'gzip' }, LIMIT],
    ['an identity encoding', { 'content-length': '10', 'content-encoding': 'identity' }, 10],
    ['a nonsense length', { 'content-length': 'abc' }, LIMIT],
  ])('%s', (_case, headers, expected) => {
    expect(bodyReservationBytes(headers, LIMIT)).toBe(expected);
  });
});

describe('admitBody', () => {
  function setup(limitBytes = 1_000) {
    const budget = createByteBudget(limitBytes);
    const refused = { count: 0 };
    const middleware = admitBody(budget, {
      bodyLimitBytes: () => 800,
      onRefused: () => (refused.count += 1),
    });
    const request = (length: number) => {
      const res = new EventEmitter();
      let passed: unknown = 'not called';
      middleware({ headers: { 'content-length': String(length) } }, res, (err) => (passed = err));
      return { res, passed };
    };
    return { budget, refused, request };
  }

  it('admits while the total fits, refuses with a retriable 503 beyond it, and admits again once released', () => {
    const { budget, refused, request } = setup();
    const a = request(600);
    const b = request(400);
    expect([a.passed, b.passed]).toEqual([undefined, undefined]);
    expect(budget.inUseBytes()).toBe(1_000);

    const c = request(1);
    expect(c.passed).toBeInstanceOf(IngressBusyError);
    expect(c.passed).toMatchObject({ code: 'ingress_busy', httpStatus: 503, retriable: true });
    expect(refused.count).toBe(1);
    expect(budget.inUseBytes()).toBe(1_000); // a refusal takes nothing

    a.res.emit('finish');
    expect(budget.inUseBytes()).toBe(400);
    expect(request(600).passed).toBeUndefined();
  });

  it('releases once when both finish and close fire, and on close alone (client went away)', () => {
    const { budget, request } = setup();
    const a = request(500);
    a.res.emit('finish');
    a.res.emit('close');
    expect(budget.inUseBytes()).toBe(0);
    const b = request(700);
    b.res.emit('close');
    expect(budget.inUseBytes()).toBe(0);
  });

  it('lets a body over the body limit through unreserved, for the 413', () => {
    const { budget, request } = setup();
    expect(request(5_000).passed).toBeUndefined();
    expect(budget.inUseBytes()).toBe(0);
  });

  it('refuses a non-positive bound', () => {
    expect(() => createByteBudget(0)).toThrow(/positive/);
  });
});
