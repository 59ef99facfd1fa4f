import { Webhook } from 'svix';
import { signatureHeaders, signingSecrets } from './signing';

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
