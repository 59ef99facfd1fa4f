import { constantTimeEquals, createTokenSigner } from './tokens';

const KEY = 'k'.repeat(32);
const NOW = 1_700_000_000_000;

describe('token signer', () => {
  const signer = createTokenSigner(KEY);

  it('verifies what it signed until it expires', () => {
    const token = signer.sign('portal-link', { owner: 'acme', exp: NOW + 1000 });
    expect(signer.verify('portal-link', token, NOW)).toEqual({
      ok: true,
      payload: { owner: 'acme', exp: NOW + 1000 },
    });
    expect(signer.verify('portal-link', token, NOW + 1000)).toEqual({ ok: false, reason: 'expired' });
  });

  it('refuses a token whose payload was changed (another owner) or whose signature was changed', () => {
    const token = signer.sign('portal-link', { owner: 'acme', exp: NOW + 1000 });
    const [, mac] = token.split('.');
    const forged = `${Buffer.from(JSON.stringify({ owner: 'globex', exp: NOW + 1000 })).toString('base64url')}.${mac}`;
    expect(signer.verify('portal-link', forged, NOW)).toEqual({ ok: false, reason: 'bad_signature' });
    const flipped = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
    expect(signer.verify('portal-link', flipped, NOW).ok).toBe(false);
  });

  it('refuses a token signed with another key, and a link used as a session (keys are separated by kind)', () => {
    const other = createTokenSigner('x'.repeat(32));
    const link = other.sign('portal-link', { owner: 'acme', exp: NOW + 1000 });
    expect(signer.verify('portal-link', link, NOW)).toEqual({ ok: false, reason: 'bad_signature' });
    const own = signer.sign('portal-link', { owner: 'acme', exp: NOW + 1000 });
    expect(signer.verify('session', own, NOW)).toEqual({ ok: false, reason: 'bad_signature' });
  });

  it('refuses malformed tokens and payloads', () => {
    expect(signer.verify('session', undefined, NOW)).toEqual({ ok: false, reason: 'malformed' });
    expect(signer.verify('session', 'abc', NOW)).toEqual({ ok: false, reason: 'malformed' });
    const noCsrf = signer.sign('session', { principal: { role: 'operator' }, csrf: 'short', exp: NOW + 1 });
    expect(signer.verify('session', noCsrf, NOW)).toEqual({ ok: false, reason: 'malformed' });
    const badOwner = signer.sign('portal-link', { owner: '<script>', exp: NOW + 1 });
    expect(signer.verify('portal-link', badOwner, NOW)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('round-trips sessions of both roles', () => {
    for (const principal of [{ role: 'operator' as const }, { role: 'portal' as const, owner: 'acme' }]) {
      const payload = { principal, csrf: 'c'.repeat(43), exp: NOW + 5 };
      expect(signer.verify('session', signer.sign('session', payload), NOW)).toEqual({ ok: true, payload });
    }
  });
});

describe('constantTimeEquals', () => {
  it('compares content and length', () => {
    expect(constantTimeEquals('abc', 'abc')).toBe(true);
    expect(constantTimeEquals('abc', 'abd')).toBe(false);
    expect(constantTimeEquals('', 'abc')).toBe(false);
  });
});
