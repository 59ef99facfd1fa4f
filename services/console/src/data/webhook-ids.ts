import {
  messageId,
  type ChargingSession,
  type CommandResult,
  type CustomerEventType,
  type DeviceLink,
  type VehicleError,
  type VehicleTelemetry,
} from '@ampflow/contracts';

/**
 * The console finds the webhooks a canonical record produced by computing their `webhook-id`s with the
 * contract's derivation (`messageId` in @ampflow/contracts, the one the notifier uses), with no index of its own.
 */
export { messageId };

/** A customer webhook a canonical record may have produced. */
export interface WebhookCandidate {
  messageId: string;
  type: CustomerEventType;
  /** The canonical record's id the message id is made from (`<sessionId>:<version>` for sessions). */
  sourceId: string;
  /**
   * True when the notifier makes this event from every such record; false when it may not (a plug change
   * fires only when the plug state changed), so the console shows it only when attempts exist.
   */
  certain: boolean;
}

export type CanonicalValue =
  | { stream: 'ev.vehicle-telemetry.v1'; value: VehicleTelemetry }
  | { stream: 'ev.command-results.v1'; value: CommandResult }
  | { stream: 'ev.device-links.v1'; value: DeviceLink }
  | { stream: 'ev.vehicle-errors.v1'; value: VehicleError }
  | { stream: 'ev.charging-sessions.v1'; value: ChargingSession };

const SESSION_TYPES = {
  STARTED: 'charging_session.started',
  UPDATED: 'charging_session.updated',
  ENDED: 'charging_session.ended',
} as const;

/** The customer events the notifier's fan-out makes from one canonical record (services/notifier/src/events). */
export function webhookCandidates(record: CanonicalValue): WebhookCandidate[] {
  const make = (sourceId: string, type: CustomerEventType, certain = true): WebhookCandidate => ({
    messageId: messageId(sourceId, type),
    type,
    sourceId,
    certain,
  });
  switch (record.stream) {
    case 'ev.vehicle-telemetry.v1': {
      const id = record.value.eventId;
      const out = [make(id, 'vehicle.telemetry')];
      if (record.value.isPluggedIn !== null)
        out.push(make(id, 'vehicle.plugged_in', false), make(id, 'vehicle.unplugged', false));
      return out;
    }
    case 'ev.command-results.v1':
      return [make(record.value.eventId, 'command.result')];
    case 'ev.device-links.v1':
      return [
        make(
          record.value.eventId,
          record.value.change === 'CONNECTED' ? 'device.connected' : 'device.disconnected',
        ),
      ];
    case 'ev.vehicle-errors.v1':
      return [make(record.value.eventId, 'vehicle.error')];
    case 'ev.charging-sessions.v1': {
      const s = record.value;
      return [make(`${s.sessionId}:${s.version}`, SESSION_TYPES[s.change])];
    }
  }
}
