import {
  SecretBoxError,
  createSecretBox,
  formatSecretsKey,
  generateSecretsKey,
  parseSecretsKey,
  type SealedBox,
} from './secret-box';

const SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
const ID = 'ep_aaaaaaaaaaaaaaaaaaaaaaaaaa';

/** The error `open` throws. */
function refusal(open: () => unknown): SecretBoxError {
  try {
    open();
  } catch (error) {
    expect(error).toBeInstanceOf(SecretBoxError);
    return error as SecretBoxError;
  }
  throw new Error('expected a SecretBoxError');
}

/** `box` with one byte of a base64 field flipped. */
function flipped(box: SealedBox, field: 'iv' | 'ciphertext' | 'tag'): SealedBox {
  const bytes = Buffer.from(box[field], 'base64');
  bytes[0] = bytes[0]! ^ 1;
  return { ...box, [field]: bytes.toString('base64') };
}

describe('secret box (AES-256-GCM)', () => {
  const k1 = generateSecretsKey('k1');
  const k2 = generateSecretsKey('k2');

  it('round trip: seals with the current key id, a fresh iv each time, and opens to the same text', () => {
    const box = createSecretBox({ current: k1 });
    const a = box.seal(SECRET, ID);
    const b = box.seal(SECRET, ID);
    expect(a.kid).toBe('k1');
    expect(Buffer.from(a.iv, 'base64')).toHaveLength(12);
    expect(Buffer.from(a.tag, 'base64')).toHaveLength(16);
    expect(a.iv).not.toBe(b.iv);
    expect(a.ciphertext).not.toBe(b.ciphertext);
    expect(JSON.stringify(a)).not.toContain(SECRET.slice('whsec_'.length));
    expect(box.open(a, ID)).toEqual({ plaintext: SECRET, current: true });
    expect(box.open(b, ID)).toEqual({ plaintext: SECRET, current: true });
  });

  it('a wrong key under the same id does not open, and the message names the key id only', () => {
    const sealed = createSecretBox({ current: k1 }).seal(SECRET, ID);
    const impostor = createSecretBox({ current: { ...generateSecretsKey('k1') } });
    const error = refusal(() => impostor.open(sealed, ID));
    expect(error.code).toBe('secrets_box_invalid');
    expect(error.message).toContain('"k1"');
    expect(error.message).not.toContain(SECRET.slice('whsec_'.length));
  });

  it('an unknown key id is refused, naming the configured ids', () => {
    const sealed = createSecretBox({ current: k1 }).seal(SECRET, ID);
    const error = refusal(() => createSecretBox({ current: k2 }).open(sealed, ID));
    expect(error.code).toBe('secrets_key_unknown');
    expect(error.message).toContain('"k1"');
    expect(error.message).toContain('"k2"');
  });

  it.each(['tag', 'ciphertext', 'iv'] as const)('a tampered %s does not open', (field) => {
    const box = createSecretBox({ current: k1 });
    const sealed = box.seal(SECRET, ID);
    expect(refusal(() => box.open(flipped(sealed, field), ID)).code).toBe('secrets_box_invalid');
  });

  it('a truncated tag is refused (GCM would otherwise accept a shorter one)', () => {
    const box = createSecretBox({ current: k1 });
    const sealed = box.seal(SECRET, ID);
    const short = { ...sealed, tag: Buffer.from(sealed.tag, 'base64').subarray(0, 4).toString('base64') };
    expect(refusal(() => box.open(short, ID)).code).toBe('secrets_box_invalid');
  });

  it('the endpoint id is authenticated: a box copied onto another endpoint does not open', () => {
    const box = createSecretBox({ current: k1 });
    const sealed = box.seal(SECRET, ID);
    expect(refusal(() => box.open(sealed, 'ep_bbbbbbbbbbbbbbbbbbbbbbbbbb')).code).toBe('secrets_box_invalid');
  });

  it('rotation: the previous key still opens (reported as not current), the new one seals', () => {
    const before = createSecretBox({ current: k1 }).seal(SECRET, ID);
    const rotating = createSecretBox({ current: k2, previous: k1 });
    expect(rotating.currentKid).toBe('k2');
    expect(rotating.open(before, ID)).toEqual({ plaintext: SECRET, current: false });
    const after = rotating.seal(SECRET, ID);
    expect(after.kid).toBe('k2');
    expect(rotating.open(after, ID)).toEqual({ plaintext: SECRET, current: true });
    // Once the previous key is dropped, only what was resealed opens.
    const rotated = createSecretBox({ current: k2 });
    expect(rotated.open(after, ID).plaintext).toBe(SECRET);
    expect(refusal(() => rotated.open(before, ID)).code).toBe('secrets_key_unknown');
  });

  it('refuses a previous key with the id of the current one', () => {
    expect(() => createSecretBox({ current: k1, previous: generateSecretsKey('k1') })).toThrow(/same key id/);
  });
});

describe('parseSecretsKey', () => {
  it('reads <kid>:<hex> and <kid>:<base64> of 32 bytes; formatSecretsKey writes the latter', () => {
    const hex = parseSecretsKey(`2026-01:${'ab'.repeat(32)}`);
    expect(hex.kid).toBe('2026-01');
    expect(hex.key.export()).toEqual(Buffer.alloc(32, 0xab));
    const key = generateSecretsKey('k9');
    const again = parseSecretsKey(formatSecretsKey(key));
    expect(again.kid).toBe('k9');
    expect(again.key.export()).toEqual(key.key.export());
  });

  it('never shows the key bytes when printed', () => {
    const key = parseSecretsKey(`k1:${'ab'.repeat(32)}`);
    expect(JSON.stringify(key)).not.toContain('abab');
    expect(String(key.key)).not.toContain('abab');
  });

  it.each([
    ['no key id', 'ab'.repeat(32)],
    ['an empty key id', `:${'ab'.repeat(32)}`],
    ['a key id with spaces', `my key:${'ab'.repeat(32)}`],
    ['31 bytes of hex', `k1:${'ab'.repeat(31)}`],
    ['24 bytes of base64', `k1:${Buffer.alloc(24, 1).toString('base64')}`],
    ['base64url', `k1:${Buffer.alloc(32, 0xff).toString('base64url')}`],
  ])('refuses %s without repeating the text', (_what, text) => {
    let message = '';
    try {
      parseSecretsKey(text);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/32 bytes/);
    expect(message).not.toContain(text.slice(text.indexOf(':') + 1, text.indexOf(':') + 9));
  });
});
