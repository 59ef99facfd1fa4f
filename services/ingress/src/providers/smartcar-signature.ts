import { createHmac, timingSafeEqual } from 'node:crypto';

/** Hex HMAC-SHA256 of `message` keyed with the Application Management Token (the `SC-Signature` scheme). */
export function smartcarHmac(managementToken: string, message: string | Buffer): string {
  return createHmac('sha256', managementToken).update(message).digest('hex');
}

/**
 * True when `signatureHeader` is the hex HMAC-SHA256 of the raw body. Compared in constant time over the
 * decoded bytes; a header of the wrong length or with non-hex characters is simply false.
 */
export function verifySmartcarSignature(
  managementToken: string,
  rawBody: Buffer,
  signatureHeader: string,
): boolean {
  const header = signatureHeader.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(header)) return false;
  const expected = createHmac('sha256', managementToken).update(rawBody).digest();
  return timingSafeEqual(expected, Buffer.from(header, 'hex'));
}

/** The VERIFY answer: `{"challenge": HEX(HMAC_SHA256(key = AMT, message = challenge))}`. */
export function smartcarChallengeAnswer(managementToken: string, challenge: string): { challenge: string } {
  return { challenge: smartcarHmac(managementToken, challenge) };
}
