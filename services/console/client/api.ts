/** Calls to the console's own API; the CSRF token from the page's meta tag goes with every state-changing one. */
const csrf = (): string => document.querySelector<HTMLMetaElement>('meta[name="csrf-token"]')?.content ?? '';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function api(method: string, path: string, body?: unknown): Promise<Json> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (method !== 'GET') headers['x-csrf-token'] = csrf();
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  if (response.status === 401) {
    window.location.assign('/login');
    throw new ApiError(401, 'unauthenticated', 'signed out');
  }
  const text = await response.text();
  const parsed = text ? JSON.parse(text) : null;
  if (!response.ok) {
    throw new ApiError(
      response.status,
      parsed?.error?.code ?? 'error',
      parsed?.error?.message ?? response.statusText,
    );
  }
  return parsed;
}

export const query = (params: Record<string, string | undefined>): string => {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value) search.set(key, value);
  const text = search.toString();
  return text ? `?${text}` : '';
};

export const role = (): string =>
  document.querySelector<HTMLMetaElement>('meta[name="ampflow-role"]')?.content ?? '';
