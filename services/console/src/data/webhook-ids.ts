import { createHash } from 'node:crypto';
import type {
  ChargingSession,
  CommandResult,
  CustomerEventType,
  DeviceLink,
  VehicleError,
  VehicleTelemetry,
} from '@ampflow/contracts';

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

function base32(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32[(buffer << (5 - bits)) & 31];
  return out;
}

/**
 * The notifier's `webhook-id` of a customer event: `msg_` + base32 of the first 160 bits of
 * sha256(`<sourceId>\n<eventType>`) (services/notifier/src/events/message-id.ts, documented in
 * docs/notifier.md). The same derivation here, because services never import services: the console finds the
 * webhooks a canonical record produced by computing their ids, with no index of its own.
 */
export function messageId(sourceId: string, eventType: string): string {
  const digest = createHash('sha256').update(sourceId).update('\n').update(eventType).digest();
  return `msg_${base32(digest.subarray(0, 20))}`;
}

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
