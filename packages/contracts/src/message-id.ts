import { createHash } from 'node:crypto';

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** RFC 4648 base32, lower case, no padding: letters and digits only, safe in URLs and header values. */
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
 * The `webhook-id` of a customer event: `msg_` + 32 base32 characters (the first 160 bits of
 * SHA-256 over the source id and the event type). Deterministic so that a replay of the source topic, a retry
 * and a manual re-send all carry the same id and receivers can deduplicate on it; the type is part of the
 * input because one source record may yield two events (a telemetry reading and the plug change it shows).
 *
 * @param sourceId the canonical record's `eventId` (for charging sessions `<sessionId>:<version>`)
 * @param eventType the customer event type, e.g. `vehicle.telemetry`
 */
export function messageId(sourceId: string, eventType: string): string {
  // A separator that cannot occur in an event type keeps ("a.b", "c") and ("a", "b.c") apart.
  const digest = createHash('sha256').update(sourceId).update('\n').update(eventType).digest();
  return `msg_${base32(digest.subarray(0, 20))}`;
}
