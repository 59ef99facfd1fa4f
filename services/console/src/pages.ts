import type { Principal } from './auth/tokens';

/** Text safe inside HTML text and double-quoted attributes. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const head = (title: string, extra = '') => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="stylesheet" href="/assets/app.css">
${extra}
</head>`;

/** The sign-in form: the admin token, once; `csrf` is the login form's double-submit token. */
export function loginPage(options: { csrf: string; error?: string }): string {
  const error = options.error
    ? `<p class="error" role="alert" id="login-error">${escapeHtml(options.error)}</p>`
    : '';
  return `${head('Sign in · ampflow console')}
<body class="login">
<main id="main">
<h1>ampflow console</h1>
<form method="post" action="/login" class="card" aria-describedby="login-help">
<p id="login-help">Operators sign in with the notifier's admin token (<code>NOTIFIER_ADMIN_TOKEN</code>). It is checked once and never stored in the browser.</p>
${error}
<label for="token">Admin token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required>
<input type="hidden" name="csrf" value="${escapeHtml(options.csrf)}">
<button type="submit">Sign in</button>
</form>
</main>
</body>
</html>`;
}

/** A refusal shown as a page (an expired or tampered portal link). */
export function messagePage(title: string, message: string): string {
  return `${head(`${title} · ampflow console`)}
<body class="login">
<main id="main">
<h1>${escapeHtml(title)}</h1>
<p role="alert">${escapeHtml(message)}</p>
</main>
</body>
</html>`;
}

const OPERATOR_VIEWS: [string, string][] = [
  ['endpoints', 'Endpoints'],
  ['messages', 'Messages'],
  ['dead-letters', 'Dead letters'],
  ['trace', 'Trace'],
  ['sessions', 'Sessions'],
  ['pipeline', 'Pipeline'],
  ['portal-links', 'Portal links'],
];
const PORTAL_VIEWS: [string, string][] = [
  ['endpoints', 'Endpoints'],
  ['messages', 'Messages'],
  ['dead-letters', 'Dead letters'],
];

/**
 * The page shell the client script fills in. The CSRF token travels in a meta tag (the script sends it back in
 * `x-csrf-token`); the role decides which views the navigation offers (the server refuses the others anyway).
 */
export function shellPage(options: { principal: Principal; csrf: string }): string {
  const { principal, csrf } = options;
  const views = principal.role === 'operator' ? OPERATOR_VIEWS : PORTAL_VIEWS;
  const who = principal.role === 'operator' ? 'Operator' : `Portal: ${principal.owner}`;
  const nav = views
    .map(([id, label]) => `<li><a href="#/${id}" data-view="${id}">${label}</a></li>`)
    .join('');
  return `${head(
    'ampflow console',
    `<meta name="csrf-token" content="${escapeHtml(csrf)}">
<meta name="ampflow-role" content="${principal.role}">
<meta name="ampflow-owner" content="${principal.role === 'portal' ? escapeHtml(principal.owner) : ''}">`,
  )}
<body>
<a class="skip" href="#main">Skip to content</a>
<header>
<span class="brand">ampflow console</span>
<nav aria-label="Main"><ul>${nav}</ul></nav>
<span class="who" id="who">${escapeHtml(who)}</span>
<form method="post" action="/logout" class="signout">
<input type="hidden" name="csrf" value="${escapeHtml(csrf)}">
<button type="submit">Sign out</button>
</form>
</header>
<main id="main" tabindex="-1"><p>Loading…</p></main>
<div id="status" role="status" aria-live="polite" class="status"></div>
<script src="/assets/app.js"></script>
</body>
</html>`;
}
