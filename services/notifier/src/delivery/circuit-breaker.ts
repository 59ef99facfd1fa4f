/** Per-endpoint circuit settings. */
export interface CircuitSettings {
  /** Consecutive failures that open the circuit (NOTIFIER_CIRCUIT_FAILURES, default 5). */
  failureThreshold: number;
  /**
   * How long an open circuit waits before one probe (NOTIFIER_CIRCUIT_COOLDOWN_MS, default 60 000 ms). Also
   * how long a probe may stay unanswered before another is allowed, so a crashed worker cannot wedge it.
   */
  cooldownMs: number;
}

/**
 * One endpoint's health. Plain data (JSON-safe) so the wiring can keep it in Redis; losing it only resets the
 * breaker to closed and restarts the "failing since" clock.
 */
export interface CircuitState {
  status: 'closed' | 'open' | 'half_open';
  consecutiveFailures: number;
  /** When the circuit last opened, epoch ms; null while closed. */
  openedAt: number | null;
  /** When the half-open probe was handed out, epoch ms; null when none is out. */
  probeStartedAt: number | null;
  /** First failure of the current unbroken run of failures, epoch ms; null after a success. */
  failingSince: number | null;
}

export const CLOSED_CIRCUIT: CircuitState = Object.freeze({
  status: 'closed',
  consecutiveFailures: 0,
  openedAt: null,
  probeStartedAt: null,
  failingSince: null,
});

export type Permit =
  | { allowed: true; probe: boolean; state: CircuitState }
  /** Wait: messages stay scheduled (they are not failed); try again at `retryAtMs`. */
  | { allowed: false; retryAtMs: number; state: CircuitState };

/**
 * May an attempt to this endpoint start at `nowMs`? Closed: yes. Open: no until the cool-down has passed,
 * then exactly one probe (the circuit turns half-open). Half-open: no while the probe is out.
 */
export function acquire(state: CircuitState, nowMs: number, settings: CircuitSettings): Permit {
  if (state.status === 'closed') return { allowed: true, probe: false, state };
  const since = state.status === 'open' ? state.openedAt : state.probeStartedAt;
  const readyAt = (since ?? nowMs) + settings.cooldownMs;
  if (nowMs < readyAt) return { allowed: false, retryAtMs: readyAt, state };
  return { allowed: true, probe: true, state: { ...state, status: 'half_open', probeStartedAt: nowMs } };
}

/** A successful attempt: closes the circuit and ends the failing run. */
export function recordSuccess(_state: CircuitState): CircuitState {
  return CLOSED_CIRCUIT;
}

/**
 * A failed attempt at `nowMs`. Opens the circuit after `failureThreshold` consecutive failures; a failed probe
 * opens it again for another cool-down. Results of attempts that were already in flight when it opened count
 * towards the run but do not restart the cool-down.
 */
export function recordFailure(state: CircuitState, nowMs: number, settings: CircuitSettings): CircuitState {
  const consecutiveFailures = state.consecutiveFailures + 1;
  const failingSince = state.failingSince ?? nowMs;
  if (state.status === 'half_open') {
    return { status: 'open', consecutiveFailures, openedAt: nowMs, probeStartedAt: null, failingSince };
  }
  if (state.status === 'open') return { ...state, consecutiveFailures, failingSince };
  if (consecutiveFailures >= settings.failureThreshold) {
    return { status: 'open', consecutiveFailures, openedAt: nowMs, probeStartedAt: null, failingSince };
  }
  return { ...state, consecutiveFailures, failingSince };
}

/**
 * The 5-day rule: true once the endpoint has failed without a single success for `disableAfterMs`
 * (NOTIFIER_DISABLE_AFTER_FAILING_MS, default 432 000 000 ms = 5 days), evaluated after a failure at `nowMs`.
 */
export function shouldDisable(state: CircuitState, nowMs: number, disableAfterMs: number): boolean {
  return state.failingSince !== null && nowMs - state.failingSince >= disableAfterMs;
}
