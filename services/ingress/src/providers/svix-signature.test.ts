import { Webhook, WebhookVerificationError } from 'svix';
import { seededRandom } from '@ampflow/testing';
import { svixHmacKey, svixSecretKey, verifySvixSignature, type SvixVerdict } from './svix-signature';

/** The seeded source of @ampflow/testing, with text drawn from an alphabet. */
function randomSource(seed: number) {
  const r = seededRandom(seed);
  const text = (alphabet: readonly string[], min: number, max: number) =>
    Array.from({ length: r.int(min, max) }, () => r.pick(alphabet)).join('');
  return { ...r, text };
}

const NOW_SECONDS = 1_765_000_000;

/** What the ingress made of the `svix` library's answer before this change (the reference). */
function librarySvixVerdict(
  secrets: readonly string[],
  id: string,
  timestamp: string,
  signature: string,
  rawBody: Buffer,
): SvixVerdict {
  const payload = rawBody.toString('utf8');
  for (const secret of secrets) {
    try {
      new Webhook(secret).verify(payload, {
        'svix-id': id,
        'svix-timestamp': timestamp,
        'svix-signature': signature,
      });
      return 'ok';
    } catch (err) {
      if (err instanceof SyntaxError) return 'ok'; // verified, then the library's JSON.parse failed
      if (!(err instanceof WebhookVerificationError)) throw err;
      if (/timestamp|Signature Headers/i.test(err.message)) return 'stale_timestamp';
    }
  }
  return 'invalid_signature';
}

const ID_ALPHABET = ['m', 's', 'g', '_', 'A', 'z', '0', '9', '.', ',', ' ', '-', 'é', '漢', '😀', '\ud800'];
const JSON_ALPHABET = ['{', '}', '"', ':', ',', 'a', 'b', '1', ' ', '\\', 'é', '€', '😀', '\n', '\ufeff'];

function generateCase(r: ReturnType<typeof randomSource>) {
  const newSecret = () => {
    const encoded = r.bytes(r.int(1, 48)).toString('base64');
    return r.chance(0.85) ? `whsec_${encoded}` : encoded;
  };
  // One secret, or two during a rotation; the sender signs with one of them, with a rotated-out one, or both.
  const secrets = r.chance(0.6) ? [newSecret()] : [newSecret(), newSecret()];
  const foreign = newSecret();

  const id = r.chance(0.7) ? `msg_${r.text(ID_ALPHABET.slice(4, 8), 8, 24)}` : r.text(ID_ALPHABET, 1, 20);
  const offset = r.pick([0, 0, 299, 300, 301, -299, -300, -301, r.int(-400, 400), r.int(-100_000, 100_000)]);
  const ts = NOW_SECONDS + offset;
  const timestamp = r.pick([
    `${ts}`,
    `${ts}`,
    `${ts}`,
    ` ${ts}`,
    `+${ts}`,
    `0${ts}`,
    `${ts}abc`,
    `${ts}.9`,
    `${ts}e3`,
    'abc',
    `-${ts}`,
    `${ts}`.slice(0, 9),
  ]);

  const body = r.pick([
    () => Buffer.from(r.text(JSON_ALPHABET, 0, 80)),
    () => Buffer.from(JSON.stringify({ type: 'vehicle.soc', vehicleId: r.text(ID_ALPHABET, 1, 10) })),
    () => r.bytes(r.int(0, 40)), // mostly invalid UTF-8
    () =>
      Buffer.concat([
        Buffer.from('{"a":"'),
        Buffer.from([r.pick([0xc0, 0xed, 0xf8, 0x80])]),
        Buffer.from('"}'),
      ]),
  ])();

  // The sender's view: it may sign another timestamp text, another id, or another body than what arrives.
  const signedTimestamp = r.chance(0.1) ? new Date((ts + r.pick([1, -1, 3600])) * 1000) : new Date(ts * 1000);
  const signedId = r.chance(0.05) ? `${id}x` : id;
  const signedBody = r.chance(0.1) && body.length > 0 ? Buffer.from(body).fill(0x41, 0, 1) : body;
  const sign = (secret: string) =>
    new Webhook(secret).sign(signedId, signedTimestamp, signedBody.toString('utf8')).slice(3);
  const good = sign(r.pick(secrets));

  const entry = () =>
    r.pick([
      () => `v1,${good}`,
      () => `v1,${good}`,
      () => `v1,${sign(foreign)}`,
      () => `v1,${sign(secrets[secrets.length - 1]!)}`,
      () => `v1,${good.slice(0, -2)}${good.endsWith('A=') ? 'B=' : 'A='}`,
      () => `v1,${good.slice(1)}`,
      () => `v1,${good}=`,
      () => `v2,${good}`,
      () => `V1,${good}`,
      () => `v1,${good},extra`,
      () => `v1,${good.toLowerCase()}`,
      () => `v1,${good.slice(0, -1)}é`,
      () => 'v1',
      () => `v1a,${good}`,
      () => r.text(['v', '1', ',', 'a', '=', '/'], 1, 50),
    ])();
  const signature = Array.from({ length: r.int(1, 3) }, entry).join(r.pick([' ', ' ', ' ', '  ']));
  return { secrets, id, timestamp, signature, body };
}

describe('Svix signatures on node:crypto', () => {
  afterEach(() => jest.useRealTimers());

  it('verifies the test vector of PROVIDERS.md', () => {
    const keys = [svixHmacKey('whsec_plJ3nmyCDGBKInavdOK15jsl')];
    const body = Buffer.from('{"event_type":"ping","data":{"success":true}}');
    const signature = 'v1,rAvfW3dJ/X/qxhsaXPOyyCGmRKsaKWcsNccKXlIktD0=';
    const verify = (now: number, sig = signature, b = body) =>
      verifySvixSignature(keys, 'msg_loFOjxBNrRLzqYUf', '1731705121', sig, b, now);
    expect(verify(1731705121)).toBe('ok');
    expect(verify(1731705121 + 300)).toBe('ok');
    expect(verify(1731705121 + 301)).toBe('stale_timestamp');
    expect(verify(1731705121 - 301)).toBe('stale_timestamp');
    expect(verify(1731705121, `v1,bad v1,${signature.slice(3)}`)).toBe('ok');
    expect(verify(1731705121, signature.replace('rAv', 'rAw'))).toBe('invalid_signature');
    expect(verify(1731705121, signature, Buffer.from(`${body.toString()} `))).toBe('invalid_signature');
  });

  it('accepts a signature from either secret during a rotation', () => {
    const [oldSecret, newSecret] = ['whsec_' + Buffer.from('old').toString('base64'), 'whsec_c2VjcmV0Mg=='];
    const keys = [oldSecret, newSecret].map(svixHmacKey);
    const body = Buffer.from('{"type":"vehicle.soc"}');
    for (const secret of [oldSecret, newSecret]) {
      const header = new Webhook(secret).sign('msg_1', new Date(NOW_SECONDS * 1000), body.toString());
      expect(verifySvixSignature(keys, 'msg_1', `${NOW_SECONDS}`, header, body, NOW_SECONDS)).toBe('ok');
      expect(verifySvixSignature([keys[0]!], 'msg_1', `${NOW_SECONDS}`, header, body, NOW_SECONDS)).toBe(
        secret === oldSecret ? 'ok' : 'invalid_signature',
      );
    }
  });

  it('reads the same key from a secret as the library, and refuses what the library cannot decode', () => {
    for (const secret of [
      'whsec_plJ3nmyCDGBKInavdOK15jsl',
      'plJ3nmyCDGBKInavdOK15jsl',
      'whsec_YWI=',
      'whsec_YWJ=',
      'whsec_ab==',
    ]) {
      const libraryKey = Buffer.from(
        (new Webhook(secret) as unknown as { inner: { key: Uint8Array } }).inner.key,
      );
      expect(svixSecretKey(secret).equals(libraryKey)).toBe(true);
    }
    for (const secret of ['whsec_abc', 'whsec_a===', 'whsec_=YWI', 'whsec_', 'whsec_YW-_']) {
      expect(() => svixSecretKey(secret)).toThrow('standard, padded base64');
    }
  });

  it('property: gives the svix library verdict over random and tampered deliveries', () => {
    const seed = Number(process.env.AMPFLOW_PROPERTY_SEED ?? 16_2026);
    const r = randomSource(seed);
    jest.useFakeTimers({ now: NOW_SECONDS * 1000 + 500 });
    const seen: Record<SvixVerdict, number> = { ok: 0, stale_timestamp: 0, invalid_signature: 0 };
    let invalidUtf8Accepted = 0;
    for (let i = 0; i < 3_000; i++) {
      const c = generateCase(r);
      const expected = librarySvixVerdict(c.secrets, c.id, c.timestamp, c.signature, c.body);
      const actual = verifySvixSignature(c.secrets.map(svixHmacKey), c.id, c.timestamp, c.signature, c.body);
      if (actual !== expected) {
        throw new Error(
          `seed ${seed}, case ${i}: expected ${expected}, got ${actual}: ${JSON.stringify({
            ...c,
            body: c.body.toString('base64'),
          })}`,
        );
      }
      seen[actual] += 1;
      if (actual === 'ok' && !Buffer.from(c.body.toString('utf8')).equals(c.body)) invalidUtf8Accepted += 1;
    }
    // The generator reaches every verdict often, including bodies that are not UTF-8.
    expect(seen.ok).toBeGreaterThan(300);
    expect(seen.stale_timestamp).toBeGreaterThan(300);
    expect(seen.invalid_signature).toBeGreaterThan(300);
    expect(invalidUtf8Accepted).toBeGreaterThan(10);
  });
});
