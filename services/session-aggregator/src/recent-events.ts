import { hash } from 'node:crypto';

/**
 * The vehicle's recent event ids, as the duplicate check keeps them: a fingerprint per id, newest last, in one
 * string. A fingerprint is the first 11 characters of the id's SHA-256 in base64url, i.e. its first 66 bits,
 * so the window of 64 ids takes 704 characters whatever the ids' length (the ids themselves took ~2.9 KB of a
 * 4.5 KB state with UUIDs, and any length a provider sends).
 *
 * Exact for what it must catch: an id among the last `limit` is always found (no false negatives). A new id
 * is taken for a duplicate only when its fingerprint equals one of the `limit` fingerprints in the window: with
 * SHA-256 that is at most `limit` × 2^-66 per reading (8.7e-19 for 64), i.e. about once in 10^18 readings;
 * finding an id that collides with a given one on purpose takes ~2^66 hashes. Such a reading is counted as a
 * `duplicate` and changes nothing, like a redelivery.
 */
export const FINGERPRINT_CHARS = 11;

/** The 66-bit fingerprint of an event id (11 base64url characters). */
export function fingerprintOf(eventId: string): string {
  return hash('sha256', eventId, 'base64url').slice(0, FINGERPRINT_CHARS);
}

/** True when `fingerprint` is one of the window's. */
export function hasFingerprint(window: string, fingerprint: string): boolean {
  // indexOf is native; a match must also start on a fingerprint boundary (it could span two).
  for (let at = window.indexOf(fingerprint); at !== -1; at = window.indexOf(fingerprint, at + 1)) {
    if (at % FINGERPRINT_CHARS === 0) return true;
  }
  return false;
}

/** The window with `fingerprint` appended as the newest, keeping the last `limit`. */
export function withFingerprint(window: string, fingerprint: string, limit: number): string {
  const next = window + fingerprint;
  const max = limit * FINGERPRINT_CHARS;
  return next.length > max ? next.slice(next.length - max) : next;
}

/** The window of a list of event ids (oldest first), as an old-format state kept them; all of them are kept. */
export function windowOf(eventIds: readonly string[]): string {
  return eventIds.map(fingerprintOf).join('');
}

/** True when the window is well formed (whole base64url fingerprints). */
export function isWindow(x: unknown): x is string {
  return typeof x === 'string' && x.length % FINGERPRINT_CHARS === 0 && /^[A-Za-z0-9_-]*$/.test(x);
}
