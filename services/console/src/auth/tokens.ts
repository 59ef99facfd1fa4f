import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Signed, expiring tokens: `base64url(JSON payload) + "." + base64url(HMAC-SHA256)`. Two kinds, each under its own
 * key derived from CONSOLE_SESSION_KEY (so a portal link can never be replayed as a session cookie, nor the other
 * way round). Stateless: nothing is stored, a restart or a second instance reads the same tokens.
 */
export type TokenKind = 'session' | 'portal-link';

/** A signed-in browser: the operator (everything) or a customer through a portal link (one owner's endpoints). */
export type Principal = { role: 'operator' } | { role: 'portal'; owner: string };

export interface SessionPayload {
  principal: Principal;
  /** The CSRF token the page must send back in `x-csrf-token` on every state-changing request. */
  csrf: string;
  /** Epoch ms. */
  exp: number;
}

export interface PortalLinkPayload {
  owner: string;
  exp: number;
}

export type VerifyResult<T> =
  { ok: true; payload: T } | { ok: false; reason: 'malformed' | 'bad_signature' | 'expired' };

/** An owner label as the notifier accepts it (1 to 64 of `A-Z a-z 0-9 . _ : -`); what a portal link may name. */
export const OWNER_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;

export interface TokenSigner {
  sign(kind: 'session', payload: SessionPayload): string;
  sign(kind: 'portal-link', payload: PortalLinkPayload): string;
  verify(kind: 'session', token: string | undefined, nowMs: number): VerifyResult<SessionPayload>;
  verify(kind: 'portal-link', token: string | undefined, nowMs: number): VerifyResult<PortalLinkPayload>;
}

export function createTokenSigner(sessionKey: string): TokenSigner {
  const keys: Record<TokenKind, Buffer> = {
    session: createHmac('sha256', sessionKey).update('ampflow-console/session/v1').digest(),
    'portal-link': createHmac('sha256', sessionKey).update('ampflow-console/portal-link/v1').digest(),
  };
  const mac = (kind: TokenKind, body: string) => createHmac('sha256', keys[kind]).update(body).digest();
  return {
    sign(kind: TokenKind, payload: object): string {
      const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
      return `${body}.${mac(kind, body).toString('base64url')}`;
    },
    verify(kind: TokenKind, token: string | undefined, nowMs: number): VerifyResult<never> {
      const match = /^([A-Za-z0-9_-]{1,4096})\.([A-Za-z0-9_-]{43})$/.exec(token ?? '');
      if (!match) return { ok: false, reason: 'malformed' };
      const given = Buffer.from(match[2]!, 'base64url');
      const expected = mac(kind, match[1]!);
      if (given.length !== expected.length || !timingSafeEqual(given, expected))
        return { ok: false, reason: 'bad_signature' };
      let payload: unknown;
      try {
        payload = JSON.parse(Buffer.from(match[1]!, 'base64url').toString('utf8'));
      } catch {
        return { ok: false, reason: 'malformed' };
      }
      if (!isValidPayload(kind, payload)) return { ok: false, reason: 'malformed' };
      if (payload.exp <= nowMs) return { ok: false, reason: 'expired' };
      return { ok: true, payload: payload as never };
    },
  } as TokenSigner;
}

function isValidPayload(kind: TokenKind, value: unknown): value is { exp: number } {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  if (typeof v.exp !== 'number' || !Number.isFinite(v.exp)) return false;
  if (kind === 'portal-link') return typeof v.owner === 'string' && OWNER_PATTERN.test(v.owner);
  const principal = v.principal as Record<string, unknown> | undefined;
  if (typeof v.csrf !== 'string' || v.csrf.length < 16 || typeof principal !== 'object' || principal === null)
    return false;
  if (principal.role === 'operator') return true;
  return (
    principal.role === 'portal' && typeof principal.owner === 'string' && OWNER_PATTERN.test(principal.owner)
  );
}

/** A random token (CSRF, login form): 32 bytes, base64url. */
export const randomToken = (): string => randomBytes(32).toString('base64url');

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/** Equality that takes the same time whatever the inputs (both are hashed first, so length leaks nothing either). */
export function constantTimeEquals(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected)) && given.length === expected.length;
}
