import { createHmac, timingSafeEqual } from 'node:crypto';

/** How far a Svix timestamp may be from now, either way (the library's and the spec's 5 minutes). */
export const SVIX_TOLERANCE_SECONDS = 5 * 60;

/** The HMAC key of a `whsec_<base64>` secret: the decoded bytes after the prefix. */
export function svixKey(secret: string): Buffer {
  return Buffer.from(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret, 'base64');
}

/**
 * The `v1` signature of a delivery: base64 HMAC-SHA256 over `${id}.${timestamp}.` followed by the body's
 * exact bytes. The svix library takes a Buffer too, but turns it into a string first (`toString()`, which
 * replaces invalid UTF-8 with U+FFFD), so it would verify other bytes than the ones we publish.
 */
export function svixSignature(key: Buffer, id: string, timestamp: string, body: Buffer): string {
  return createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest('base64');
}

export type SvixVerdict = 'valid' | 'stale_timestamp' | 'invalid_signature';

/**
 * Checks Standard Webhooks / Svix headers against the body's bytes with each key (two during rotation).
 * `signatureHeader` is a space-separated list of `v1,<base64>`; one match is enough. The timestamp (Unix
 * seconds, digits only) must be within {@link SVIX_TOLERANCE_SECONDS} of `nowMs`; it is checked first, as the
 * library does, so an old signed delivery replayed later is refused whatever its signature.
 */
export function verifySvixSignature(
  keys: readonly Buffer[],
  headers: { id: string; timestamp: string; signature: string },
  body: Buffer,
  nowMs: number,
): SvixVerdict {
  if (!/^\d{1,15}$/.test(headers.timestamp)) return 'stale_timestamp';
  if (Math.abs(nowMs / 1000 - Number(headers.timestamp)) > SVIX_TOLERANCE_SECONDS) return 'stale_timestamp';
  const offered = headers.signature
    .split(' ')
    .filter((s) => s.startsWith('v1,'))
    .map((s) => Buffer.from(s.slice(3)));
  for (const key of keys) {
    const expected = Buffer.from(svixSignature(key, headers.id, headers.timestamp, body));
    // Constant time over the base64 text, as the library compares: no second encoding of one MAC passes.
    if (offered.some((o) => o.length === expected.length && timingSafeEqual(o, expected))) return 'valid';
  }
  return 'invalid_signature';
}
