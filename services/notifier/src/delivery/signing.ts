import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';

/** An endpoint's signing secrets: the current one and, after a rotation, the one it replaced. */
export interface EndpointSecrets {
  /** `whsec_<base64>`. */
  current: string;
  previous?: { secret: string; /** When the rotation happened, epoch ms. */ rotatedAt: number } | null;
}

/** Standard Webhooks headers plus the `svix-*` aliases that older Svix libraries read. */
export type SignatureHeaders = {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
  'svix-id': string;
  'svix-timestamp': string;
  'svix-signature': string;
};

/**
 * The secrets to sign with at `nowMs`: the current one, and the previous one while the rotation is younger
 * than `overlapMs` (NOTIFIER_SECRET_ROTATION_OVERLAP_MS, default 24 h), as Svix keeps the old key valid, so a
 * receiver that has not switched yet still verifies. The current secret comes first.
 */
export function signingSecrets(secrets: EndpointSecrets, nowMs: number, overlapMs: number): string[] {
  const previous = secrets.previous;
  if (previous && nowMs - previous.rotatedAt < overlapMs && previous.secret !== secrets.current) {
    return [secrets.current, previous.secret];
  }
  return [secrets.current];
}

/** Base64 as the `svix` library decodes a secret: the standard alphabet, padded to a multiple of 4. */
const SECRET_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const SECRET_PREFIX = 'whsec_';

/**
 * HMAC keys per secret, decoded once, not per attempt; bounded. A `KeyObject`, not a Buffer: `createHmac`
 * with a Buffer key costs 14-19 µs per signature on Node 24 (it turns the Buffer into a key object each time),
 * with a KeyObject 3.4 µs (svix's JavaScript SHA-256: 17 µs), for a 1 KB body.
 */
const keys = new Map<string, KeyObject>();
function keyOf(secret: string): KeyObject {
  let key = keys.get(secret);
  if (key === undefined) {
    const text = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
    // The endpoint model only stores canonical base64 secrets (endpoints/model.ts); anything else is refused
    // rather than decoded leniently into some other key.
    if (text === '' || !SECRET_BASE64.test(text)) throw new Error('a signing secret is not valid base64');
    key = createSecretKey(Buffer.from(text, 'base64'));
    if (keys.size >= 10_000) keys.clear();
    keys.set(secret, key);
  }
  return key;
}

/**
 * One Standard Webhooks signature: `v1,<base64 HMAC-SHA256 of "<id>.<unix seconds>.<body>">` with the decoded
 * secret as key, on `node:crypto`. Byte for byte what `svix`'s `Webhook.sign` returns (signing.test.ts checks it
 * on random inputs): the text is UTF-8 encoded as `TextEncoder` does (a lone surrogate becomes U+FFFD), and
 * the seconds are `Math.floor(ms / 1000)`.
 */
export function sign(secret: string, msgId: string, seconds: number, body: string): string {
  return `v1,${createHmac('sha256', keyOf(secret)).update(`${msgId}.${seconds}.${body}`, 'utf8').digest('base64')}`;
}

/**
 * Signs one delivery: `v1,<base64 HMAC-SHA256 of "<id>.<unix seconds>.<body>">` per secret, space-separated in
 * one header (Svix's rotation format; a verifier accepts any match).
 *
 * @param msgId the `webhook-id`, stable across retries (`messageId` in @ampflow/contracts)
 * @param timestamp the attempt's time: re-signed on every attempt, since receivers refuse timestamps more than
 *   5 minutes off
 * @param body the exact JSON text sent (signing a re-serialisation would break verification)
 * @param secrets one or two `whsec_` secrets, from {@link signingSecrets}
 */
export function signatureHeaders(
  msgId: string,
  timestamp: Date,
  body: string,
  secrets: readonly string[],
): SignatureHeaders {
  if (secrets.length === 0) throw new Error('at least one signing secret is required');
  const unix = Math.floor(timestamp.getTime() / 1000);
  const signature =
    secrets.length === 1
      ? sign(secrets[0]!, msgId, unix, body)
      : secrets.map((secret) => sign(secret, msgId, unix, body)).join(' ');
  const seconds = String(unix);
  return {
    'webhook-id': msgId,
    'webhook-timestamp': seconds,
    'webhook-signature': signature,
    'svix-id': msgId,
    'svix-timestamp': seconds,
    'svix-signature': signature,
  };
}
