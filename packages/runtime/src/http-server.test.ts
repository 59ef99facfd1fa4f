import { DEFAULT_HTTP_SERVER_LIMITS, httpServerLimits } from './http-server';

describe('httpServerLimits', () => {
  it('cuts slow headers off after 10 s, checked every second, and bounds connections by default', () => {
    expect(httpServerLimits({})).toEqual({
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      keepAliveTimeoutMs: 65_000,
      maxConnections: 1_000,
      connectionsCheckingIntervalMs: 1_000,
    });
  });

  it('takes the limits given and the defaults for the others', () => {
    expect(
      httpServerLimits({ headersTimeoutMs: 2_000, maxConnections: 50, requestTimeoutMs: undefined }),
    ).toEqual({
      ...DEFAULT_HTTP_SERVER_LIMITS,
      headersTimeoutMs: 2_000,
      maxConnections: 50,
    });
  });

  it('refuses a request timeout shorter than the headers timeout, and limits that are not positive integers', () => {
    expect(() => httpServerLimits({ headersTimeoutMs: 40_000 })).toThrow(
      'HTTP server requestTimeoutMs (30000) must be at least headersTimeoutMs (40000)',
    );
    expect(() => httpServerLimits({ maxConnections: 0 })).toThrow(
      /maxConnections must be a positive integer/,
    );
    expect(() => httpServerLimits({ keepAliveTimeoutMs: 1.5 })).toThrow(/keepAliveTimeoutMs/);
  });
});
