import type { RequestHandler } from 'express';

/** The page's Content-Security-Policy: only the console's own script, styles and requests; no inline script. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join('; ');

/**
 * Headers on every answer: the CSP, no framing, no MIME sniffing, no referrer (a portal link in the address bar
 * must not leak to another site), and no caching of pages and API answers (bundled assets set their own).
 */
export const securityHeaders: RequestHandler = (_req, res, next) => {
  res.setHeader('content-security-policy', CONTENT_SECURITY_POLICY);
  res.setHeader('x-frame-options', 'DENY');
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('referrer-policy', 'no-referrer');
  res.setHeader('cross-origin-opener-policy', 'same-origin');
  res.setHeader('cache-control', 'no-store');
  next();
};
