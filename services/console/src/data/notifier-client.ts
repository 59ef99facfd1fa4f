import { request } from 'undici';
import { DependencyError } from '@ampflow/runtime';

/** One attempt as the notifier's admin API returns it (`GET /v1/messages/:id/attempts`), passed through. */
export type AttemptRecord = Record<string, unknown>;

export interface NotifierClient {
  /** The attempts of a message over all endpoints, newest first; [] when the notifier knows none. */
  attemptsOf(messageId: string): Promise<AttemptRecord[]>;
}

/**
 * The notifier's admin API, read with the admin token (sent as a Bearer token, never logged). A notifier that
 * does not answer, or refuses the token, is a {@link DependencyError}: the trace shows it per webhook.
 */
export function createNotifierClient(options: {
  baseUrl: string;
  adminToken: string;
  timeoutMs?: number;
}): NotifierClient {
  // The origin, as documented; a base given with the API's `/v1` works the same.
  const base = options.baseUrl.replace(/\/+$/, '').replace(/\/v1$/, '');
  const timeout = options.timeoutMs ?? 3_000;
  return {
    async attemptsOf(messageId) {
      let res;
      try {
        res = await request(`${base}/v1/messages/${encodeURIComponent(messageId)}/attempts`, {
          headers: { authorization: `Bearer ${options.adminToken}` },
          headersTimeout: timeout,
          bodyTimeout: timeout,
        });
      } catch (err) {
        throw new DependencyError('notifier_unavailable', 'the notifier admin API did not answer', {
          cause: err,
        });
      }
      const text = await res.body.text();
      if (res.statusCode === 404) return [];
      if (res.statusCode !== 200)
        throw new DependencyError(
          'notifier_unavailable',
          `the notifier admin API answered ${res.statusCode}`,
        );
      const body = JSON.parse(text) as { data?: AttemptRecord[] };
      return body.data ?? [];
    },
  };
}
