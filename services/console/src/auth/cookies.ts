import type { Request, Response } from 'express';

/** The cookies of a request (no dependency: the console reads two of them). Malformed pairs are skipped. */
export function readCookies(req: Request): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at <= 0) continue;
    const name = part.slice(0, at).trim();
    try {
      if (!cookies.has(name)) cookies.set(name, decodeURIComponent(part.slice(at + 1).trim()));
    } catch {
      // An undecodable value is as good as absent.
    }
  }
  return cookies;
}

/** Whether the browser reached the console over https (directly, or through a proxy that says so). */
export const isHttps = (req: Request): boolean =>
  req.secure ||
  String(req.headers['x-forwarded-proto'] ?? '')
    .split(',')[0]
    ?.trim() === 'https';

/**
 * Sets a cookie the page's script can never read (`HttpOnly`), sent only on same-site requests
 * (`SameSite=Strict`), `Secure` when the console is reached over https. `maxAgeMs` 0 deletes it.
 */
export function setCookie(req: Request, res: Response, name: string, value: string, maxAgeMs: number): void {
  const attributes = [
    `${name}=${encodeURIComponent(value)}`,
    'Path=/',
    'HttpOnly',
    'SameSite=Strict',
    `Max-Age=${Math.max(0, Math.floor(maxAgeMs / 1000))}`,
  ];
  if (isHttps(req)) attributes.push('Secure');
  res.append('set-cookie', attributes.join('; '));
}
