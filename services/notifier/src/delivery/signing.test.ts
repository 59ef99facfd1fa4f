import { Webhook } from 'svix';
import { seededRandom } from '@ampflow/testing';
import { sign, signatureHeaders, signingSecrets } from './signing';

const OLD = 'whsec_plJ3nmyCDGBKInavdOK15jsl';
const NEW = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const body = JSON.stringify({
  type: 'vehicle.telemetry',
  timestamp: '2026-11-26T10:00:00.000Z',
  data: { x: 'é' },
});

function webhookHeaders(h: Record<string, string>) {
  return {
    'webhook-id': h['webhook-id']!,
    'webhook-timestamp': h['webhook-timestamp']!,
    'webhook-signature': h['webhook-signature']!,
  };
}
function svixHeaders(h: Record<string, string>) {
  return {
    'svix-id': h['svix-id']!,
    'svix-timestamp': h['svix-timestamp']!,
    'svix-signature': h['svix-signature']!,
  };
}

describe('signatureHeaders', () => {
  it('matches the Standard Webhooks test vector (PROVIDERS.md)', () => {
    const headers = signatureHeaders(
      'msg_loFOjxBNrRLzqYUf',
      new Date(1731705121 * 1000),
      '{"event_type":"ping","data":{"success":true}}',
      [OLD],
    );
    expect(headers['webhook-signature']).toBe('v1,rAvfW3dJ/X/qxhsaXPOyyCGmRKsaKWcsNccKXlIktD0=');
    expect(headers['webhook-timestamp']).toBe('1731705121');
  });

  it('gives the same id, timestamp and signature under both header families', () => {
    const h = signatureHeaders('msg_abc', new Date(), body, [NEW]);
    expect(h['svix-id']).toBe(h['webhook-id']);
    expect(h['svix-timestamp']).toBe(h['webhook-timestamp']);
    expect(h['svix-signature']).toBe(h['webhook-signature']);
  });

  it.each([
    ['webhook-*', webhookHeaders],
    ['svix-*', svixHeaders],
  ])('verifies with svix Webhook.verify through the %s headers', (_c, pick) => {
    const h = signatureHeaders('msg_abc', new Date(), body, [NEW]) as unknown as Record<string, string>;
    expect(new Webhook(NEW).verify(body, pick(h))).toEqual(JSON.parse(body));
    expect(() => new Webhook(OLD).verify(body, pick(h))).toThrow();
  });

  it('during a rotation sends both signatures, space-separated, and each secret verifies alone', () => {
    const h = signatureHeaders('msg_abc', new Date(), body, [NEW, OLD]) as unknown as Record<string, string>;
    expect(h['webhook-signature']!.split(' ')).toHaveLength(2);
    expect(h['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/=]+ v1,[A-Za-z0-9+/=]+$/);
    for (const secret of [NEW, OLD]) {
      expect(new Webhook(secret).verify(body, webhookHeaders(h))).toEqual(JSON.parse(body));
      expect(new Webhook(secret).verify(body, svixHeaders(h))).toEqual(JSON.parse(body));
    }
  });

  it('a changed body or id no longer verifies', () => {
    const h = signatureHeaders('msg_abc', new Date(), body, [NEW]) as unknown as Record<string, string>;
    expect(() => new Webhook(NEW).verify(body.replace('é', 'e'), webhookHeaders(h))).toThrow();
    expect(() =>
      new Webhook(NEW).verify(body, { ...webhookHeaders(h), 'webhook-id': 'msg_other' }),
    ).toThrow();
  });

  it('refuses to sign without a secret', () => {
    expect(() => signatureHeaders('msg_abc', new Date(), body, [])).toThrow(/secret/);
  });
});

describe('signingSecrets', () => {
  const overlapMs = 24 * 3_600_000;
  it.each([
    ['no rotation', { current: NEW }, 0, [NEW]],
    [
      'inside the overlap',
      { current: NEW, previous: { secret: OLD, rotatedAt: 0 } },
      overlapMs - 1,
      [NEW, OLD],
    ],
    [
      'once the overlap has passed',
      { current: NEW, previous: { secret: OLD, rotatedAt: 0 } },
      overlapMs,
      [NEW],
    ],
    ['a rotation to the same secret', { current: NEW, previous: { secret: NEW, rotatedAt: 0 } }, 1, [NEW]],
  ] as const)('%s', (_c, secrets, nowMs, expected) => {
    expect(signingSecrets(secrets, nowMs, overlapMs)).toEqual(expected);
  });
});

/** The seeded source of @ampflow/testing, with text over every range that matters to UTF-8. */
function seeded(seed: number) {
  const { int, bytes, next } = seededRandom(seed);
  // Code units from every range that matters to UTF-8: ASCII, 2- and 3-byte characters, surrogate pairs, and
  // lone surrogates (which TextEncoder and Buffer both turn into U+FFFD).
  const pools: Array<() => string> = [
    () => String.fromCharCode(int(0x20, 0x7e)),
    () => String.fromCharCode(int(0, 0x1f)),
    () => String.fromCharCode(int(0x80, 0x7ff)),
    () => String.fromCharCode(int(0x800, 0xd7ff)),
    () => String.fromCodePoint(int(0x10000, 0x10ffff)),
    () => String.fromCharCode(int(0xd800, 0xdfff)),
    () => '"{}.:,\\ ',
  ];
  const text = (maxLength: number) => {
    let out = '';
    const length = int(0, maxLength);
    while (out.length < length) out += pools[int(0, pools.length - 1)]!();
    return out;
  };
  return { int, text, bytes, next };
}

describe('sign (node:crypto) against the svix library', () => {
  it('gives byte-identical signatures for 2,000 random secrets, ids, timestamps and bodies', () => {
    const g = seeded(20261206);
    for (let i = 0; i < 2_000; i++) {
      const secret = `whsec_${g.bytes(g.int(1, 64)).toString('base64')}`;
      const msgId = g.int(0, 3) === 0 ? g.text(40) : `msg_${g.text(32)}`;
      // Whole and fractional seconds, before and after 1970 and 2038.
      const ms = Math.round((g.next() - 0.3) * 4_000_000_000_000);
      const body = g.int(0, 5) === 0 ? g.text(5_000) : g.text(300);
      const expected = new Webhook(secret).sign(msgId, new Date(ms), body);
      expect({ i, signature: sign(secret, msgId, Math.floor(ms / 1000), body) }).toEqual({
        i,
        signature: expected,
      });
    }
  });

  it('gives the same header as svix for one or two secrets', () => {
    const g = seeded(7);
    for (let i = 0; i < 200; i++) {
      const secrets = [0, 1].slice(0, g.int(1, 2)).map(() => `whsec_${g.bytes(32).toString('base64')}`);
      const at = new Date(Math.round(g.next() * 2_000_000_000_000));
      const body = g.text(500);
      const expected = secrets.map((s) => new Webhook(s).sign('msg_x', at, body)).join(' ');
      expect(signatureHeaders('msg_x', at, body, secrets)['webhook-signature']).toBe(expected);
    }
  });

  it.each(['whsec_', 'whsec_not base64!', 'whsec_aQ', 'whsec_a==='])(
    'refuses the malformed secret %s instead of signing with some other key',
    (secret) => {
      expect(() => sign(secret, 'msg_x', 1, '{}')).toThrow(/not valid base64/);
    },
  );
});
