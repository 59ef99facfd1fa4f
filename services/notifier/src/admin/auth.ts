import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { AuthenticationError } from '@ampflow/runtime';

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/**
 * A check of `Authorization: Bearer <token>` against `expected`. Both sides are hashed first and the digests
 * compared with `timingSafeEqual`, so neither the content nor the length of the token leaks through timing.
 */
export function bearerTokenMatcher(expected: string): (authorization: string | undefined) => boolean {
  if (expected.length === 0) throw new Error('the admin token must not be empty');
  const expectedDigest = digest(expected);
  return (authorization) => {
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '');
    // Still compare something when the header is missing or malformed, so that path costs the same.
    const given = digest(match?.[1] ?? '');
    return timingSafeEqual(given, expectedDigest) && match !== null;
  };
}

/** Express middleware: 401 `unauthorized` with `WWW-Authenticate: Bearer` unless the bearer token matches. */
export function requireBearerToken(expected: string): RequestHandler {
  const matches = bearerTokenMatcher(expected);
  return (req, res, next) => {
    if (matches(req.headers.authorization)) {
      next();
      return;
    }
    res.setHeader('www-authenticate', 'Bearer');
    next(new AuthenticationError('unauthorized', 'a valid Authorization: Bearer <token> header is required'));
  };
}
