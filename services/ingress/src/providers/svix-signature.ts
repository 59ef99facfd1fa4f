import { isUtf8 } from 'node:buffer';
import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';

/** Svix / Standard Webhooks: a timestamp more than this far from now (past or future) is refused. */
export const SVIX_TOLERANCE_SECONDS = 5 * 60;
const SECRET_PREFIX = 'whsec_';

/** Why a Svix signature was refused; `ok` when one of the signatures matched. */
export type SvixVerdict = 'ok' | 'stale_timestamp' | 'invalid_signature';

/** Standard base64, padded: the form the `svix` library's decoder accepts. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * The HMAC key of a `whsec_<base64>` secret (the prefix is optional, as in the `svix` library). The base64 must
 * be what the library's decoder accepts (standard alphabet, padded to a multiple of 4), where Node's own decoder
 * would silently skip characters it does not know; it then decodes to the same bytes. An empty key is refused.
 */
export function svixSecretKey(secret: string): Buffer {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  if (encoded.length === 0 || !BASE64.test(encoded)) {
    throw new Error('a Svix webhook secret must be whsec_ followed by standard, padded base64');
  }
  return Buffer.from(encoded, 'base64');
}

/**
 * The key of a secret as a `KeyObject`, made once: `createHmac` with a Buffer key costs 12–15 µs a call on
 * Node 24 (it builds a key object every time), with a `KeyObject` about 2 µs.
 */
export function svixHmacKey(secret: string): KeyObject {
  return createSecretKey(svixSecretKey(secret));
}

/**
 * Svix signature verification on `node:crypto`, accepting exactly what the `svix` library's
 * `Webhook.verify` accepts (`svix-signature.test.ts` holds the property test against the library):
 *
 * - the timestamp header is read as `parseInt(header, 10)` and must be within 5 minutes of `nowSeconds`;
 *   the signed content uses that integer, not the header's text;
 * - the signed content is `${id}.${timestamp}.${body}`, HMAC-SHA256 keyed with each secret in turn, base64;
 * - the signature header is split on single spaces; an entry `v1,<sig>` matches when `<sig>` (up to a
 *   further comma) equals the expected base64 exactly, compared in constant time.
 *
 * `svix` verifies text: given bytes it decodes them as UTF-8 with U+FFFD for invalid sequences. For valid
 * UTF-8 that text encodes back to the same bytes, so the raw bytes are hashed as they are (no copy); only an
 * invalid body is hashed the library's way (the ingress then refuses it with 400 `invalid_utf8`).
 */
export function verifySvixSignature(
  keys: readonly KeyObject[],
  id: string,
  timestampHeader: string,
  signatureHeader: string,
  rawBody: Buffer,
  nowSeconds: number = Math.floor(Date.now() / 1000),
): SvixVerdict {
  const timestamp = parseInt(timestampHeader, 10);
  if (Number.isNaN(timestamp)) return 'stale_timestamp';
  if (nowSeconds - timestamp > SVIX_TOLERANCE_SECONDS || timestamp > nowSeconds + SVIX_TOLERANCE_SECONDS)
    return 'stale_timestamp';
  const signed = isUtf8(rawBody) ? rawBody : Buffer.from(rawBody.toString('utf8'));
  const prefix = `${id}.${timestamp}.`;
  const passed = signatureHeader.split(' ');
  for (const key of keys) {
    const expected = Buffer.from(
      createHmac('sha256', key).update(prefix).update(signed).digest('base64'),
      'latin1',
    );
    for (const entry of passed) {
      if (!entry.startsWith('v1,')) continue;
      const end = entry.indexOf(',', 3);
      const signature = end === -1 ? entry.slice(3) : entry.slice(3, end);
      if (signature.length !== expected.length) continue;
      // A header is a latin1 string in Node; the library compares UTF-8 bytes, which for a string of the
      // expected (ASCII) length differ from the expected bytes whenever a character is not ASCII.
      const given = Buffer.from(signature, 'utf8');
      if (given.length === expected.length && timingSafeEqual(given, expected)) return 'ok';
    }
  }
  return 'invalid_signature';
}
