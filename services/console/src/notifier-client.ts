import { DependencyError } from '@ampflow/runtime';

/** JSON as the notifier answers it; the console passes it on and reads only the few fields it scopes by. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export interface NotifierAnswer {
  status: number;
  /** Parsed JSON, or null for an empty answer (204). */
  body: Json;
}

/** The notifier's admin API as the console calls it: always with the admin token, never the browser's. */
export interface NotifierClient {
  /** `path` is below `/v1`, e.g. `/endpoints/ep_x`; `query` is appended as is. */
  call(
    method: string,
    path: string,
    options?: { query?: URLSearchParams; body?: unknown },
  ): Promise<NotifierAnswer>;
}

export function createNotifierClient(options: {
  baseUrl: string;
  adminToken: string;
  timeoutMs: number;
  fetch?: typeof fetch;
}): NotifierClient {
  const doFetch = options.fetch ?? fetch;
  const base = options.baseUrl.replace(/\/+$/, '');
  return {
    async call(method, path, { query, body } = {}) {
      const search = query && [...query.keys()].length > 0 ? `?${query.toString()}` : '';
      let response: Response;
      try {
        response = await doFetch(`${base}/v1${path}${search}`, {
          method,
          headers: {
            authorization: `Bearer ${options.adminToken}`,
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(options.timeoutMs),
        });
      } catch (cause) {
        throw new DependencyError('notifier_unavailable', 'the notifier did not answer', { cause });
      }
      const text = await response.text();
      let parsed: Json = null;
      if (text.length > 0) {
        try {
          parsed = JSON.parse(text);
        } catch (cause) {
          throw new DependencyError(
            'notifier_bad_answer',
            'the notifier answered something other than JSON',
            {
              cause,
            },
          );
        }
      }
      return { status: response.status, body: parsed };
    },
  };
}
