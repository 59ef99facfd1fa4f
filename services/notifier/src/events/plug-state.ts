import type { VehicleTelemetry } from '@ampflow/contracts';

/** The last applied plug reading of one vehicle (what the wiring keeps per vehicle). */
export interface PlugState {
  isPluggedIn: boolean;
  /** Provider event time of the reading that set it, epoch ms. */
  occurredAt: number;
  /** Source `eventId` of that reading. */
  eventId: string;
}

export type PlugEventType = 'vehicle.plugged_in' | 'vehicle.unplugged';

export interface PlugDecision {
  /** The state to keep; the same object as `previous` when nothing changed. */
  state: PlugState | null;
  /** The customer event this reading fires, or null. */
  event: PlugEventType | null;
  /**
   * Why nothing fired, when nothing did: `no_reading` (isPluggedIn unknown), `duplicate` (same eventId),
   * `late` (older than, or as old as, the last applied reading), `baseline` (first reading known for the
   * vehicle), `unchanged`.
   */
  skipped: 'no_reading' | 'duplicate' | 'late' | 'baseline' | 'unchanged' | null;
}

/**
 * Applies one telemetry reading to a vehicle's plug state, ordered by `occurredAt` (provider time), never by
 * arrival, as the session aggregator orders its readings.
 *
 * - A reading older than the last applied one, or exactly as old, changes nothing (`late`): a delayed
 *   delivery cannot flip the state back, and a tie keeps the first applied so a replay decides the same way.
 * - The first reading known for a vehicle sets a baseline and fires nothing: a plug event claims a change,
 *   and a change we did not see (the vehicle may have been plugged in for hours) is not one. The current
 *   state still reaches customers in `vehicle.telemetry`.
 * - A newer reading with the same value moves `occurredAt` forward, so later comparisons are against it.
 */
export function applyPlugReading(
  previous: PlugState | null,
  reading: Pick<VehicleTelemetry, 'eventId' | 'occurredAt' | 'isPluggedIn'>,
): PlugDecision {
  if (reading.isPluggedIn === null) return { state: previous, event: null, skipped: 'no_reading' };
  const next: PlugState = {
    isPluggedIn: reading.isPluggedIn,
    occurredAt: reading.occurredAt,
    eventId: reading.eventId,
  };
  if (previous === null) return { state: next, event: null, skipped: 'baseline' };
  if (previous.eventId === reading.eventId) return { state: previous, event: null, skipped: 'duplicate' };
  if (reading.occurredAt <= previous.occurredAt) return { state: previous, event: null, skipped: 'late' };
  if (previous.isPluggedIn === reading.isPluggedIn) return { state: next, event: null, skipped: 'unchanged' };
  return {
    state: next,
    event: reading.isPluggedIn ? 'vehicle.plugged_in' : 'vehicle.unplugged',
    skipped: null,
  };
}
