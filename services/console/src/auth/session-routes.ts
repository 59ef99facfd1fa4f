import express, { Router, type Request, type RequestHandler, type Response } from 'express';
import type { Counter } from 'prom-client';
import { AppError, AuthenticationError, ValidationError } from '@ampflow/runtime';
import { loginPage, messagePage, shellPage } from '../pages';
import { readCookies, setCookie } from './cookies';
import {
  OWNER_PATTERN,
  constantTimeEquals,
  randomToken,
  type Principal,
  type SessionPayload,
  type TokenSigner,
} from './tokens';

export const SESSION_COOKIE = 'af_session';
/** The login form's double-submit token (the form field must equal the cookie). */
export const LOGIN_CSRF_COOKIE = 'af_login';
const LOGIN_FORM_TTL_MS = 30 * 60_000;

export interface SessionSettings {
  adminToken: string;
  sessionTtlMs: number;
  portalLinkMaxTtlMs: number;
}

export interface SessionDeps {
  settings: SessionSettings;
  signer: TokenSigner;
  now: () => number;
  logins: Counter<'outcome'>;
}

const forbidden = (code: string, message: string) => new AppError(code, message, false, 403);
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The session of a request, from its signed cookie; undefined when absent, tampered with or expired. */
export function sessionOf(req: Request, signer: TokenSigner, nowMs: number): SessionPayload | undefined {
  const verified = signer.verify('session', readCookies(req).get(SESSION_COOKIE), nowMs);
  return verified.ok ? verified.payload : undefined;
}

/**
 * Sign-in, sign-out, portal links and the page shell; plus {@link SessionAuth.api}, the guard of `/api`: a valid
 * session cookie (401 otherwise) and, on every state-changing method, `x-csrf-token` equal to the session's token
 * (403 otherwise). The session is a signed cookie: nothing is stored server-side.
 */
export interface SessionAuth {
  pages: Router;
  api: RequestHandler;
  /** 403 unless the session is the operator's (for trace, sessions, pipeline and portal-link minting). */
  operatorOnly: RequestHandler;
  /** `POST /api/portal-links` and `GET /api/session`, mounted after {@link api}. */
  apiRoutes: Router;
}

export function createSessionAuth(deps: SessionDeps): SessionAuth {
  const { settings, signer, now } = deps;

  const startSession = (req: Request, res: Response, principal: Principal, expMs: number) => {
    const payload: SessionPayload = { principal, csrf: randomToken(), exp: expMs };
    setCookie(req, res, SESSION_COOKIE, signer.sign('session', payload), expMs - now());
  };

  const showLogin = (req: Request, res: Response, status: number, error?: string) => {
    const csrf = randomToken();
    setCookie(req, res, LOGIN_CSRF_COOKIE, csrf, LOGIN_FORM_TTL_MS);
    res.status(status).type('html').send(loginPage({ csrf, error }));
  };

  const pages = Router();
  pages.get('/login', (req, res) => showLogin(req, res, 200));
  pages.post('/login', express.urlencoded({ extended: false, limit: 8 * 1024 }), (req, res) => {
    const form = (req.body ?? {}) as Record<string, unknown>;
    const formCsrf = typeof form.csrf === 'string' ? form.csrf : '';
    const cookieCsrf = readCookies(req).get(LOGIN_CSRF_COOKIE) ?? '';
    if (cookieCsrf.length === 0 || !constantTimeEquals(formCsrf, cookieCsrf)) {
      deps.logins.inc({ outcome: 'csrf' });
      showLogin(req, res, 403, 'The form expired; please sign in again.');
      return;
    }
    const token = typeof form.token === 'string' ? form.token : '';
    if (!constantTimeEquals(token, settings.adminToken)) {
      deps.logins.inc({ outcome: 'refused' });
      res.locals.log?.info('console sign-in refused');
      showLogin(req, res, 401, 'That is not the admin token.');
      return;
    }
    deps.logins.inc({ outcome: 'operator' });
    setCookie(req, res, LOGIN_CSRF_COOKIE, '', 0);
    startSession(req, res, { role: 'operator' }, now() + settings.sessionTtlMs);
    res.redirect(303, '/');
  });

  pages.post('/logout', express.urlencoded({ extended: false, limit: 8 * 1024 }), (req, res) => {
    const session = sessionOf(req, signer, now());
    const form = (req.body ?? {}) as Record<string, unknown>;
    if (session && !(typeof form.csrf === 'string' && constantTimeEquals(form.csrf, session.csrf))) {
      res.status(403).type('html').send(messagePage('Not signed out', 'The form is missing its CSRF token.'));
      return;
    }
    setCookie(req, res, SESSION_COOKIE, '', 0);
    res.redirect(303, '/login');
  });

  pages.get('/portal/:token', (req, res) => {
    const verified = signer.verify('portal-link', String(req.params.token), now());
    if (!verified.ok) {
      deps.logins.inc({ outcome: `portal_${verified.reason}` });
      const message =
        verified.reason === 'expired'
          ? 'This portal link has expired. Ask your operator for a new one.'
          : 'This portal link is not valid.';
      res.status(403).type('html').send(messagePage('Link refused', message));
      return;
    }
    deps.logins.inc({ outcome: 'portal' });
    const { owner, exp } = verified.payload;
    startSession(req, res, { role: 'portal', owner }, Math.min(exp, now() + settings.sessionTtlMs));
    res.redirect(303, '/');
  });

  pages.get('/', (req, res) => {
    const session = sessionOf(req, signer, now());
    if (!session) {
      res.redirect(303, '/login');
      return;
    }
    res.type('html').send(shellPage({ principal: session.principal, csrf: session.csrf }));
  });

  const api: RequestHandler = (req, res, next) => {
    const session = sessionOf(req, signer, now());
    if (!session) {
      next(new AuthenticationError('unauthenticated', 'sign in first'));
      return;
    }
    if (!SAFE_METHODS.has(req.method)) {
      const given = req.headers['x-csrf-token'];
      if (typeof given !== 'string' || !constantTimeEquals(given, session.csrf)) {
        next(
          forbidden(
            'csrf_token_invalid',
            'a state-changing request needs the x-csrf-token header of the session',
          ),
        );
        return;
      }
    }
    res.locals.principal = session.principal;
    res.locals.session = session;
    next();
  };

  const operatorOnly: RequestHandler = (_req, res, next) => {
    const principal = res.locals.principal as Principal | undefined;
    next(
      principal?.role === 'operator'
        ? undefined
        : forbidden('operator_only', 'only the operator may use this'),
    );
  };

  const apiRoutes = Router();
  apiRoutes.get('/session', (_req, res) => {
    const session = res.locals.session as SessionPayload;
    res.json({ ...session.principal, expiresAt: new Date(session.exp).toISOString() });
  });
  apiRoutes.post('/portal-links', operatorOnly, express.json({ limit: 4 * 1024 }), (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const owner = body.owner;
    if (typeof owner !== 'string' || !OWNER_PATTERN.test(owner))
      throw new ValidationError('invalid_request', 'owner: 1 to 64 characters of A-Z a-z 0-9 . _ : -');
    const ttlMs = body.ttlMinutes === undefined ? 24 * 3_600_000 : Number(body.ttlMinutes) * 60_000;
    if (!Number.isInteger(body.ttlMinutes ?? 1440) || ttlMs <= 0 || ttlMs > settings.portalLinkMaxTtlMs)
      throw new ValidationError(
        'invalid_request',
        `ttlMinutes: a whole number of minutes, at most ${Math.floor(settings.portalLinkMaxTtlMs / 60_000)}`,
      );
    const exp = now() + ttlMs;
    const token = signer.sign('portal-link', { owner, exp });
    res.status(201).json({ owner, path: `/portal/${token}`, expiresAt: new Date(exp).toISOString() });
  });

  return { pages, api, operatorOnly, apiRoutes };
}
