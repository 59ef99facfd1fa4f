import { createCipheriv, createDecipheriv, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { AppError } from '@ampflow/runtime';

/**
 * A key that encrypts endpoint secrets at rest (NOTIFIER_SECRETS_KEY), with the id stored next to each
 * ciphertext so a reader knows which key opens it. The key is a `KeyObject`: printed or logged by mistake
 * it shows `SecretKeyObject { type: 'secret' }`, never its bytes.
 */
export interface SecretsKey {
  kid: string;
  key: KeyObject;
}

/** One AES-256-GCM ciphertext as stored in a record; binary fields are base64. */
export interface SealedBox {
  kid: string;
  /** 12 random bytes, new for every seal. */
  iv: string;
  ciphertext: string;
  /** The 16-byte GCM authentication tag. */
  tag: string;
}

/** What {@link SecretBox.open} found: the plain text and whether the current key (not the previous) opened it. */
export interface Opened {
  plaintext: string;
  current: boolean;
}

export interface SecretBox {
  /** Id of the key `seal` uses. */
  readonly currentKid: string;
  /** Encrypts `plaintext` with the current key; `aad` (the endpoint id) is authenticated, not stored. */
  seal(plaintext: string, aad: string): SealedBox;
  /**
   * Decrypts with the key `box.kid` names (current or previous). Throws {@link SecretBoxError} when no
   * configured key has that id, or when the ciphertext, tag or `aad` do not authenticate (wrong key, tampering,
   * or a box copied onto another endpoint). The message names key ids only, never key or plain text.
   */
  open(box: SealedBox, aad: string): Opened;
}

export class SecretBoxError extends AppError {
  constructor(code: 'secrets_key_unknown' | 'secrets_box_invalid', message: string) {
    super(code, message, false, 500);
  }
}

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
const HEX_KEY = /^[0-9a-fA-F]{64}$/;
const BASE64_KEY = /^[A-Za-z0-9+/]{43}=$/;

/**
 * Parses `<kid>:<key>`, the key being 32 bytes as 64 hex digits or 44 base64 characters
 * (`openssl rand -hex 32`, `openssl rand -base64 32`). Throws an Error whose message describes the expected
 * form and never repeats any of `text`.
 */
export function parseSecretsKey(text: string): SecretsKey {
  const at = text.indexOf(':');
  const kid = at < 0 ? '' : text.slice(0, at);
  const encoded = at < 0 ? '' : text.slice(at + 1).trim();
  if (!KID_PATTERN.test(kid)) {
    throw new Error(
      'expected <key id>:<32 bytes as hex or base64>, the key id being 1 to 64 letters, digits, ".", "_" or "-"',
    );
  }
  let bytes: Buffer;
  if (HEX_KEY.test(encoded)) bytes = Buffer.from(encoded, 'hex');
  else if (BASE64_KEY.test(encoded)) bytes = Buffer.from(encoded, 'base64');
  else
    throw new Error(
      `the key after "<key id>:" must be ${KEY_BYTES} bytes as 64 hex digits or 44 base64 characters (openssl rand -hex 32)`,
    );
  return { kid, key: createSecretKey(bytes) };
}

/** A new random key (tests, and the text `scripts/run-platform.sh` writes has the same form). */
export function generateSecretsKey(kid: string): SecretsKey {
  return { kid, key: createSecretKey(randomBytes(KEY_BYTES)) };
}

/** The `<kid>:<base64>` text of `key`, as NOTIFIER_SECRETS_KEY holds it (for tests that start a process). */
export function formatSecretsKey(key: SecretsKey): string {
  return `${key.kid}:${key.key.export().toString('base64')}`;
}

/**
 * AES-256-GCM on `node:crypto` with a current key that seals and opens, and optionally the previous key that
 * only opens (during a rotation), as Svix encrypts endpoint secrets with its main secret.
 */
export function createSecretBox(keys: { current: SecretsKey; previous?: SecretsKey }): SecretBox {
  const { current, previous } = keys;
  if (previous && previous.kid === current.kid) {
    throw new Error(`the current and previous secrets keys have the same key id "${current.kid}"`);
  }
  const byKid = new Map<string, SecretsKey>([[current.kid, current]]);
  if (previous) byKid.set(previous.kid, previous);

  return {
    currentKid: current.kid,

    seal(plaintext, aad) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', current.key, iv);
      cipher.setAAD(Buffer.from(aad, 'utf8'));
      const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return {
        kid: current.kid,
        iv: iv.toString('base64'),
        ciphertext: ciphertext.toString('base64'),
        tag: cipher.getAuthTag().toString('base64'),
      };
    },

    open(box, aad) {
      const key = byKid.get(box.kid);
      if (!key) {
        const known = [...byKid.keys()].map((kid) => `"${kid}"`).join(' and ');
        throw new SecretBoxError(
          'secrets_key_unknown',
          `sealed with key id "${box.kid}", but only ${known} are configured (NOTIFIER_SECRETS_KEY, NOTIFIER_SECRETS_KEY_PREVIOUS)`,
        );
      }
      const iv = Buffer.from(box.iv, 'base64');
      const tag = Buffer.from(box.tag, 'base64');
      if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) {
        throw new SecretBoxError(
          'secrets_box_invalid',
          `a sealed box needs a ${IV_BYTES}-byte iv and ${TAG_BYTES}-byte tag`,
        );
      }
      try {
        const decipher = createDecipheriv('aes-256-gcm', key.key, iv, { authTagLength: TAG_BYTES });
        decipher.setAAD(Buffer.from(aad, 'utf8'));
        decipher.setAuthTag(tag);
        const plaintext = Buffer.concat([
          decipher.update(Buffer.from(box.ciphertext, 'base64')),
          decipher.final(),
        ]).toString('utf8');
        return { plaintext, current: key === current };
      } catch {
        // node:crypto's own message ("Unsupported state or unable to authenticate data") says no more than this.
        throw new SecretBoxError(
          'secrets_box_invalid',
          `the box sealed with key id "${box.kid}" does not authenticate: another key under that id, or the record was altered`,
        );
      }
    },
  };
}
