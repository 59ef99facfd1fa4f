import { hash } from 'node:crypto';
import type { ChargingSession, GeoLocation, VehicleTelemetry } from '@ampflow/contracts';
import { fingerprintOf, hasFingerprint, withFingerprint } from './recent-events';

/** The part of a telemetry reading the reducer looks at. */
export type Reading = Pick<
  VehicleTelemetry,
  | 'eventId'
  | 'provider'
  | 'vehicleId'
  | 'userId'
  | 'occurredAt'
  | 'isCharging'
  | 'isPluggedIn'
  | 'chargingState'
  | 'stateOfChargePercent'
  | 'chargePowerKw'
  | 'energyAddedKwh'
  | 'batteryCapacityKwh'
  | 'location'
>;

export interface OpenSession {
  sessionId: string;
  startedAt: number;
  lastReadingAt: number;
  socStart: number | null;
  socLatest: number | null;
  energyReportedKwh: number | null;
  maxPowerKw: number | null;
  location: GeoLocation | null;
  eventCount: number;
  version: number;
  /** Provider time of the last UPDATED emitted (for the rate limit). */
  lastUpdateEmittedAt: number;
}

/** Everything the aggregator remembers about one vehicle. Plain JSON: it is stored in Redis as it is. */
export interface VehicleSessionState {
  vehicleId: string;
  provider: string;
  userId: string | null;
  /** Provider time of the newest reading applied; older readings are late. */
  lastAppliedAt: number | null;
  /**
   * Fingerprints of the ids of the most recent readings (up to `recentEventIdLimit`), newest last, to drop
   * redeliveries: 11 characters each, see `recent-events.ts`. (States written before this held the ids
   * themselves, `recentEventIds`; `state-codec.ts` reads both.)
   */
  recentEvents: string;
  /** Last known battery capacity, kWh (Smartcar sends it with some deliveries only). */
  batteryCapacityKwh: number | null;
  session: OpenSession | null;
}

export type ReadingOutcome = 'applied' | 'duplicate' | 'late';

export interface ReducerSettings {
  /** A session without readings for this long ends with INACTIVITY_TIMEOUT (default 6 h). */
  inactivityTimeoutMs: number;
  /** UPDATED changes of one session at most this often, in provider time; 0 emits every one. */
  updateMinIntervalMs: number;
  /** How many recent event ids are kept per vehicle for duplicate detection. */
  recentEventIdLimit: number;
}

export const DEFAULT_REDUCER_SETTINGS: ReducerSettings = {
  inactivityTimeoutMs: 6 * 3600 * 1000,
  updateMinIntervalMs: 0,
  recentEventIdLimit: 64,
};

export interface ReduceResult {
  state: VehicleSessionState;
  changes: ChargingSession[];
  outcome: ReadingOutcome;
}

export function initialState(
  reading: Pick<Reading, 'vehicleId' | 'provider' | 'userId'>,
): VehicleSessionState {
  return {
    vehicleId: reading.vehicleId,
    provider: reading.provider,
    userId: reading.userId,
    lastAppliedAt: null,
    recentEvents: '',
    batteryCapacityKwh: null,
    session: null,
  };
}

/** Deterministic from the vehicle and the start time, so a replay yields the same ids. */
export function sessionIdOf(vehicleId: string, startedAt: number): string {
  const hex = hash('sha256', `${vehicleId}|${startedAt}`, 'hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

function says(reading: Reading) {
  const fullyCharged = reading.chargingState === 'FULLY_CHARGED';
  return {
    charging: reading.isCharging === true || reading.chargingState === 'CHARGING',
    notCharging: reading.isCharging === false || reading.chargingState === 'NOT_CHARGING' || fullyCharged,
    fullyCharged,
    unplugged: reading.isPluggedIn === false,
  };
}

function energy(
  session: OpenSession,
  capacityKwh: number | null,
): Pick<ChargingSession, 'energyAddedKwh' | 'energySource'> {
  if (session.energyReportedKwh !== null)
    return { energyAddedKwh: session.energyReportedKwh, energySource: 'REPORTED' };
  if (session.socStart !== null && session.socLatest !== null && capacityKwh !== null) {
    return {
      energyAddedKwh: Math.max(0, ((session.socLatest - session.socStart) / 100) * capacityKwh),
      energySource: 'ESTIMATED_FROM_SOC',
    };
  }
  return { energyAddedKwh: null, energySource: 'UNKNOWN' };
}

function record(
  state: VehicleSessionState,
  session: OpenSession,
  change: ChargingSession['change'],
  end?: { at: number; reason: NonNullable<ChargingSession['endReason']> },
): ChargingSession {
  return {
    sessionId: session.sessionId,
    vehicleId: state.vehicleId,
    provider: state.provider,
    userId: state.userId,
    change,
    status: end ? 'COMPLETED' : 'ACTIVE',
    startedAt: session.startedAt,
    endedAt: end?.at ?? null,
    durationSeconds: end ? Math.round((end.at - session.startedAt) / 1000) : null,
    socStartPercent: session.socStart,
    socEndPercent: session.socLatest,
    ...energy(session, state.batteryCapacityKwh),
    maxPowerKw: session.maxPowerKw,
    location: session.location,
    endReason: end?.reason ?? null,
    eventCount: session.eventCount,
    version: session.version,
  };
}

function absorb(session: OpenSession, reading: Reading): OpenSession {
  const power = reading.chargePowerKw;
  return {
    ...session,
    lastReadingAt: reading.occurredAt,
    socLatest: reading.stateOfChargePercent ?? session.socLatest,
    energyReportedKwh: reading.energyAddedKwh ?? session.energyReportedKwh,
    maxPowerKw: power === null ? session.maxPowerKw : Math.max(power, session.maxPowerKw ?? power),
    location: reading.location ?? session.location,
    eventCount: session.eventCount + 1,
  };
}

/**
 * Ends the open session with INACTIVITY_TIMEOUT when `now` (provider time of a newer reading, or the wall
 * clock for the timer) is more than the timeout past its last reading. `endedAt` is the last reading.
 */
export function expire(
  state: VehicleSessionState,
  now: number,
  settings: ReducerSettings = DEFAULT_REDUCER_SETTINGS,
): { state: VehicleSessionState; changes: ChargingSession[] } {
  const session = state.session;
  if (!session || now - session.lastReadingAt <= settings.inactivityTimeoutMs) return { state, changes: [] };
  const ended = { ...session, version: session.version + 1 };
  return {
    state: { ...state, session: null },
    changes: [record(state, ended, 'ENDED', { at: session.lastReadingAt, reason: 'INACTIVITY_TIMEOUT' })],
  };
}

/**
 * Applies one telemetry reading to a vehicle's state. Pure: no clock, no I/O; the same state and reading
 * always give the same result, which is what makes replays and restarts produce identical sessions.
 */
export function reduce(
  previous: VehicleSessionState,
  reading: Reading,
  settings: ReducerSettings = DEFAULT_REDUCER_SETTINGS,
): ReduceResult {
  const fingerprint = fingerprintOf(reading.eventId);
  if (hasFingerprint(previous.recentEvents, fingerprint))
    return { state: previous, changes: [], outcome: 'duplicate' };
  const recentEvents = withFingerprint(previous.recentEvents, fingerprint, settings.recentEventIdLimit);
  if (previous.lastAppliedAt !== null && reading.occurredAt < previous.lastAppliedAt) {
    return { state: { ...previous, recentEvents }, changes: [], outcome: 'late' };
  }

  const timedOut = expire(previous, reading.occurredAt, settings);
  const changes = [...timedOut.changes];
  let state: VehicleSessionState = {
    ...timedOut.state,
    userId: reading.userId ?? timedOut.state.userId,
    lastAppliedAt: reading.occurredAt,
    recentEvents,
    batteryCapacityKwh: reading.batteryCapacityKwh ?? timedOut.state.batteryCapacityKwh,
  };
  const signal = says(reading);
  const open = state.session;

  if (!open) {
    if (signal.charging && !signal.unplugged) {
      const startedAt = reading.occurredAt;
      const session: OpenSession = {
        sessionId: sessionIdOf(state.vehicleId, startedAt),
        startedAt,
        lastReadingAt: startedAt,
        socStart: reading.stateOfChargePercent,
        socLatest: reading.stateOfChargePercent,
        energyReportedKwh: reading.energyAddedKwh,
        maxPowerKw: reading.chargePowerKw,
        location: reading.location,
        eventCount: 1,
        version: 1,
        lastUpdateEmittedAt: startedAt,
      };
      state = { ...state, session };
      changes.push(record(state, session, 'STARTED'));
    }
    return { state, changes, outcome: 'applied' };
  }

  const absorbed = absorb(open, reading);
  const endReason = signal.unplugged
    ? ('UNPLUGGED' as const)
    : signal.fullyCharged
      ? ('FULLY_CHARGED' as const)
      : signal.notCharging
        ? ('CHARGING_STOPPED' as const)
        : undefined;
  if (endReason) {
    const ended = { ...absorbed, version: absorbed.version + 1 };
    changes.push(record(state, ended, 'ENDED', { at: reading.occurredAt, reason: endReason }));
    return { state: { ...state, session: null }, changes, outcome: 'applied' };
  }
  if (reading.occurredAt - open.lastUpdateEmittedAt >= settings.updateMinIntervalMs) {
    const updated = { ...absorbed, version: absorbed.version + 1, lastUpdateEmittedAt: reading.occurredAt };
    changes.push(record(state, updated, 'UPDATED'));
    return { state: { ...state, session: updated }, changes, outcome: 'applied' };
  }
  return { state: { ...state, session: absorbed }, changes, outcome: 'applied' };
}
