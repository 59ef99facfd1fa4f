import type { ChargingSession } from '@ampflow/contracts';
import type { AvroCodec, OutputRecord } from '@ampflow/kafka';
import type { AggregatorMetrics } from './metrics';
import type { StateWrite } from './redis-session-store';
import type { VehicleSessionState } from './session-reducer';
import { changelogValueText } from './state-changelog';
import { encodeState } from './state-codec';

/**
 * A session change as produced to the sessions topic, keyed by vehicle. Throws the codec's
 * `ValidationError('encode_failed')` when the change does not fit the ChargingSession schema.
 */
export function sessionChangeOutput(
  codec: Pick<AvroCodec, 'encode'>,
  sessionsTopic: string,
  change: ChargingSession,
): OutputRecord {
  return {
    topic: sessionsTopic,
    message: {
      key: change.vehicleId,
      value: codec.encode(sessionsTopic, change),
      headers: { 'event-id': `${change.sessionId}:${change.version}`, provider: change.provider },
    },
  };
}

/**
 * The vehicle's new state as the changelog keeps it, produced with the session changes. Uses the write's
 * encoded state when it has one.
 */
export function changelogOutput(changelogTopic: string, write: StateWrite, writtenAt: number): OutputRecord {
  const value = changelogValueText(
    { rev: write.expectedRev + 1, deadline: write.deadline, writtenAt },
    write.stateText ?? encodeState(write.state),
  );
  return { topic: changelogTopic, message: { key: write.vehicleId, value: Buffer.from(value) } };
}

/** Wall-clock time (epoch ms) at which the vehicle's open session times out; null when none is open. */
export function deadlineOf(
  state: VehicleSessionState,
  now: number,
  inactivityTimeoutMs: number,
): number | null {
  return state.session ? now + inactivityTimeoutMs : null;
}

/** Counts started and ended sessions, once their changes are acknowledged and their states saved. */
export function countChanges(
  metrics: Pick<AggregatorMetrics, 'started' | 'ended'>,
  changes: ChargingSession[],
): void {
  for (const c of changes) {
    if (c.change === 'STARTED') metrics.started.inc();
    if (c.change === 'ENDED') metrics.ended.inc({ reason: c.endReason ?? 'UNKNOWN' });
  }
}
