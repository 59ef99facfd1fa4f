import { Webhook } from 'svix';

/** An endpoint's signing secrets: the current one and, after a rotation, the one it replaced. */
export interface EndpointSecrets {
  /** `whsec_<base64>`. */
  current: string;
  previous?: { secret: string; /** When the rotation happened, epoch ms. */ rotatedAt: number } | null;
}

/** Standard Webhooks headers plus the `svix-*` aliases that older Svix libraries read. */
export interface SignatureHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
  'svix-id': string;
  'svix-timestamp': string;
  'svix-signature': string;
}

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

/** `Webhook` objects per secret (the secret's base64 is decoded once, not per attempt); bounded. */
const webhooks = new Map<string, Webhook>();
function webhookFor(secret: string): Webhook {
  let webhook = webhooks.get(secret);
  if (!webhook) {
    if (webhooks.size >= 10_000) webhooks.clear();
    webhook = new Webhook(secret);
    webhooks.set(secret, webhook);
  }
  return webhook;
}

/**
 * Signs one delivery with the `svix` library: `v1,<base64 HMAC-SHA256 of "<id>.<unix seconds>.<body>">` per
 * secret, space-separated in one header (Svix's rotation format; a verifier accepts any match).
 *
 * @param msgId the `webhook-id`, stable across retries (events/message-id.ts)
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
  const signature = secrets.map((secret) => webhookFor(secret).sign(msgId, timestamp, body)).join(' ');
  const seconds = String(Math.floor(timestamp.getTime() / 1000));
  return {
    'webhook-id': msgId,
    'webhook-timestamp': seconds,
    'webhook-signature': signature,
    'svix-id': msgId,
    'svix-timestamp': seconds,
    'svix-signature': signature,
  };
}
