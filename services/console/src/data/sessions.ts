import type { ChargingSession, VehicleTelemetry } from '@ampflow/contracts';

/** A session as the console shows it: the latest change of it, times in ISO-8601, no location. */
export interface SessionView {
  sessionId: string;
  vehicleId: string;
  provider: string;
  status: ChargingSession['status'];
  startedAt: string;
  endedAt: string | null;
  durationSeconds: number | null;
  energyAddedKwh: number | null;
  energySource: ChargingSession['energySource'];
  socStartPercent: number | null;
  socEndPercent: number | null;
  maxPowerKw: number | null;
  endReason: ChargingSession['endReason'];
  eventCount: number;
  version: number;
}

export function sessionView(s: ChargingSession): SessionView {
  return {
    sessionId: s.sessionId,
    vehicleId: s.vehicleId,
    provider: s.provider,
    status: s.status,
    startedAt: new Date(s.startedAt).toISOString(),
    endedAt: s.endedAt === null ? null : new Date(s.endedAt).toISOString(),
    durationSeconds: s.durationSeconds,
    energyAddedKwh: s.energyAddedKwh,
    energySource: s.energySource,
    socStartPercent: s.socStartPercent,
    socEndPercent: s.socEndPercent,
    maxPowerKw: s.maxPowerKw,
    endReason: s.endReason,
    eventCount: s.eventCount,
    version: s.version,
  };
}

/**
 * The latest change of every session read from the sessions topic (each change carries the whole session),
 * at most `maxSessions`: past that the session first seen longest ago goes. Rebuilt by reading the topic.
 */
export interface SessionStore {
  /** Keeps `change` unless a later version of its session is already held (a replay). */
  apply(change: ChargingSession): void;
  get(sessionId: string): ChargingSession | undefined;
  /** A vehicle's sessions, newest start first. */
  ofVehicle(vehicleId: string): ChargingSession[];
  /** Every session whose latest change is not ENDED, newest start first. */
  open(): ChargingSession[];
  size(): number;
}

export function createSessionStore(options: { maxSessions: number; onEvict?: () => void }): SessionStore {
  const sessions = new Map<string, ChargingSession>();
  const byVehicle = new Map<string, Set<string>>();
  const newestFirst = (a: ChargingSession, b: ChargingSession) => b.startedAt - a.startedAt;
  return {
    apply(change) {
      const held = sessions.get(change.sessionId);
      if (held && held.version >= change.version) return;
      sessions.set(change.sessionId, change);
      let ids = byVehicle.get(change.vehicleId);
      if (!ids) byVehicle.set(change.vehicleId, (ids = new Set()));
      ids.add(change.sessionId);
      while (sessions.size > options.maxSessions) {
        const [oldestId, oldest] = sessions.entries().next().value!;
        sessions.delete(oldestId);
        const own = byVehicle.get(oldest.vehicleId);
        own?.delete(oldestId);
        if (own?.size === 0) byVehicle.delete(oldest.vehicleId);
        options.onEvict?.();
      }
    },
    get: (id) => sessions.get(id),
    ofVehicle: (vehicleId) =>
      [...(byVehicle.get(vehicleId) ?? [])].map((id) => sessions.get(id)!).sort(newestFirst),
    open: () => [...sessions.values()].filter((s) => s.status === 'ACTIVE').sort(newestFirst),
    size: () => sessions.size,
  };
}

/** One point of a session's chart: provider time, state of charge and charging power (null when not reported). */
export interface SeriesPoint {
  at: string;
  socPercent: number | null;
  powerKw: number | null;
}

/**
 * The SOC and power over a session, from the vehicle's canonical telemetry: the readings whose provider time
 * lies between the session's start and end (open sessions: up to now), each reading once, in time order.
 */
export function sessionSeries(session: ChargingSession, readings: VehicleTelemetry[]): SeriesPoint[] {
  const end = session.endedAt ?? Number.POSITIVE_INFINITY;
  const seen = new Set<string>();
  return readings
    .filter((r) => {
      if (r.vehicleId !== session.vehicleId || r.occurredAt < session.startedAt || r.occurredAt > end)
        return false;
      if (seen.has(r.eventId)) return false;
      seen.add(r.eventId);
      return true;
    })
    .sort((a, b) => a.occurredAt - b.occurredAt)
    .map((r) => ({
      at: new Date(r.occurredAt).toISOString(),
      socPercent: r.stateOfChargePercent,
      powerKw: r.chargePowerKw,
    }));
}

/** How a session change was tied to a reading. */
export type Attribution = 'started_at' | 'ended_at' | 'reading_count';

/**
 * The session changes one telemetry reading caused. Session records name no reading, so the link is inferred
 * the way the session-aggregator's reducer makes them (services/session-aggregator/src/session-reducer.ts):
 * STARTED has `startedAt` = the reading's provider time, an ENDED other than INACTIVITY_TIMEOUT has `endedAt`
 * = it, and an UPDATED has `eventCount` = the number of readings the session had applied with this one. That
 * count is replayed over the vehicle's readings (partition order, duplicates and late readings skipped as the
 * reducer does), so an UPDATED is only tied when the session's first reading is still in the index.
 * INACTIVITY_TIMEOUT ends are the timer's (or a much later reading's) and are tied to no reading.
 *
 * @param readings the vehicle's readings in partition order
 * @param changes the vehicle's session changes
 */
export function changesCausedBy(
  reading: VehicleTelemetry,
  readings: VehicleTelemetry[],
  changes: ChargingSession[],
): { change: ChargingSession; attribution: Attribution }[] {
  const out: { change: ChargingSession; attribution: Attribution }[] = [];
  for (const c of changes) {
    if (c.vehicleId !== reading.vehicleId) continue;
    if (c.change === 'STARTED' && c.startedAt === reading.occurredAt)
      out.push({ change: c, attribution: 'started_at' });
    if (c.change === 'ENDED' && c.endReason !== 'INACTIVITY_TIMEOUT' && c.endedAt === reading.occurredAt)
      out.push({ change: c, attribution: 'ended_at' });
  }
  const updates = changes.filter(
    (c) => c.change === 'UPDATED' && c.vehicleId === reading.vehicleId && c.startedAt <= reading.occurredAt,
  );
  const sessionIds = new Set(updates.map((c) => c.sessionId));
  for (const sessionId of sessionIds) {
    const startedAt = updates.find((c) => c.sessionId === sessionId)!.startedAt;
    const count = appliedCount(reading, readings, startedAt);
    if (count === undefined) continue;
    const match = updates.find((c) => c.sessionId === sessionId && c.eventCount === count);
    if (match) out.push({ change: match, attribution: 'reading_count' });
  }
  return out;
}

/** How many readings the session starting at `startedAt` had applied once `reading` was applied. */
function appliedCount(
  reading: VehicleTelemetry,
  readings: VehicleTelemetry[],
  startedAt: number,
): number | undefined {
  const first = readings.findIndex((r) => r.occurredAt === startedAt);
  if (first < 0) return undefined;
  const seen = new Set(readings.slice(0, first).map((r) => r.eventId));
  let lastApplied = Number.NEGATIVE_INFINITY;
  let count = 0;
  for (const r of readings.slice(first)) {
    if (seen.has(r.eventId)) {
      if (r.eventId === reading.eventId) return undefined;
      continue;
    }
    seen.add(r.eventId);
    if (r.occurredAt < lastApplied) {
      if (r.eventId === reading.eventId) return undefined;
      continue;
    }
    lastApplied = r.occurredAt;
    count += 1;
    if (r.eventId === reading.eventId) return count;
  }
  return undefined;
}
