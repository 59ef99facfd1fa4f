import {
  acquire,
  CLOSED_CIRCUIT,
  recordFailure,
  recordSuccess,
  shouldDisable,
  type CircuitState,
} from './circuit-breaker';

const settings = { failureThreshold: 3, cooldownMs: 60_000 };
const fail = (state: CircuitState, at: number) => recordFailure(state, at, settings);

function failTimes(n: number, start = 0): CircuitState {
  let state = CLOSED_CIRCUIT;
  for (let i = 0; i < n; i++) state = fail(state, start + i);
  return state;
}

describe('circuit breaker', () => {
  it('a closed circuit lets attempts through', () => {
    expect(acquire(CLOSED_CIRCUIT, 0, settings)).toEqual({
      allowed: true,
      probe: false,
      state: CLOSED_CIRCUIT,
    });
  });

  it('stays closed below the threshold and opens at it', () => {
    expect(failTimes(2)).toMatchObject({ status: 'closed', consecutiveFailures: 2, failingSince: 0 });
    expect(failTimes(3)).toMatchObject({
      status: 'open',
      consecutiveFailures: 3,
      openedAt: 2,
      failingSince: 0,
    });
  });

  it('a success resets the count', () => {
    expect(fail(recordSuccess(failTimes(2)), 10)).toMatchObject({
      status: 'closed',
      consecutiveFailures: 1,
      failingSince: 10,
    });
  });

  it('an open circuit holds attempts until the cool-down, then hands out one probe', () => {
    const open = failTimes(3); // opened at 2
    expect(acquire(open, 1_000, settings)).toEqual({ allowed: false, retryAtMs: 60_002, state: open });
    const probe = acquire(open, 60_002, settings);
    expect(probe).toMatchObject({
      allowed: true,
      probe: true,
      state: { status: 'half_open', probeStartedAt: 60_002 },
    });
    // While the probe is out, others wait.
    expect(acquire(probe.state, 60_010, settings)).toMatchObject({ allowed: false, retryAtMs: 120_002 });
  });

  it('a successful probe closes it; a failed probe opens it for another cool-down', () => {
    const halfOpen = acquire(failTimes(3), 70_000, settings).state;
    expect(recordSuccess(halfOpen)).toEqual(CLOSED_CIRCUIT);
    const reopened = fail(halfOpen, 70_500);
    expect(reopened).toMatchObject({
      status: 'open',
      openedAt: 70_500,
      probeStartedAt: null,
      failingSince: 0,
    });
    expect(acquire(reopened, 100_000, settings).allowed).toBe(false);
    expect(acquire(reopened, 130_500, settings).allowed).toBe(true);
  });

  it('a probe never answered (a crashed worker) is replaced after a cool-down', () => {
    const halfOpen = acquire(failTimes(3), 70_000, settings).state;
    expect(acquire(halfOpen, 130_000, settings)).toMatchObject({ allowed: true, probe: true });
  });

  it('failures of attempts already in flight do not restart an open cool-down', () => {
    const open = failTimes(3);
    expect(fail(open, 5_000)).toMatchObject({ status: 'open', openedAt: 2, consecutiveFailures: 4 });
  });
});

describe('shouldDisable (failing continuously since)', () => {
  const fiveDays = 5 * 86_400_000;
  it.each([
    ['never failed', CLOSED_CIRCUIT, fiveDays, false],
    ['failing for less than 5 days', failTimes(1, 1_000), fiveDays, false],
    ['failing for 5 days', failTimes(1, 1_000), fiveDays + 1_000, true],
    [
      'a success in between restarts the clock',
      fail(recordSuccess(failTimes(1, 0)), 86_400_000),
      fiveDays,
      false,
    ],
  ] as const)('%s', (_c, state, now, expected) => {
    expect(shouldDisable(state, now, fiveDays)).toBe(expected);
  });
});
