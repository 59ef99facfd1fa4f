import { ValidationError } from '@ampflow/runtime';
import { isWindow, windowOf } from './recent-events';
import type { VehicleSessionState } from './session-reducer';

/**
 * A vehicle state as Redis and the changelog keep it: JSON of the reducer state, whose recent event ids are
 * fingerprints (`recentEvents`, ~1 KB in all). Encoded once per reading by the chunk handler; the same text
 * goes to the changelog record and to Redis.
 */
export function encodeState(state: VehicleSessionState): string {
  return JSON.stringify(state);
}

/**
 * The reducer state of a parsed stored state, in either format: the current one (`recentEvents`), or the one
 * written before fingerprints (`recentEventIds`: the ids themselves, up to 64), whose ids become fingerprints
 * (same order, same duplicates caught). Returns null when `raw` is neither.
 */
export function stateOf(raw: unknown): VehicleSessionState | null {
  if (
    typeof raw !== 'object' ||
    raw === null ||
    typeof (raw as { vehicleId?: unknown }).vehicleId !== 'string'
  )
    return null;
  const r = raw as Partial<VehicleSessionState> & { recentEventIds?: unknown };
  if (isWindow(r.recentEvents)) return r as VehicleSessionState;
  if (Array.isArray(r.recentEventIds) && r.recentEventIds.every((id) => typeof id === 'string')) {
    const { recentEventIds, ...rest } = r;
    return { ...rest, recentEvents: windowOf(recentEventIds as string[]) } as VehicleSessionState;
  }
  return null;
}

/** Reads a state as Redis keeps it (the `state` field), either format; throws `bad_state` when not one. */
export function decodeState(text: string): VehicleSessionState {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ValidationError('bad_state', 'a stored vehicle state is not JSON', { cause: err });
  }
  const state = stateOf(parsed);
  if (!state) throw new ValidationError('bad_state', 'a stored vehicle state has an unknown shape');
  return state;
}
