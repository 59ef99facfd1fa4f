import { DependencyError } from '@ampflow/runtime';
import type { IngressAnswer } from './outcome';
import type { ScenarioDelivery } from './scenario';

export interface ServiceUrls {
  ingress: string;
  normalizer: string;
  aggregator: string;
  notifier: string;
}

export interface PlatformStatus {
  /** Services whose `/readyz` answered 200. */
  ready: string[];
  /** Services that answered, but not ready (503): `name (checks that fail)`. */
  notReady: string[];
  /** Services that did not answer at all. */
  down: string[];
}

/** Asks every service's `/readyz` (2 s each, in parallel). */
export async function checkPlatform(urls: ServiceUrls, timeoutMs = 2_000): Promise<PlatformStatus> {
  const status: PlatformStatus = { ready: [], notReady: [], down: [] };
  await Promise.all(
    Object.entries(urls).map(async ([name, base]) => {
      const where = `${name} (${base})`;
      try {
        const response = await fetch(new URL('/readyz', base), { signal: AbortSignal.timeout(timeoutMs) });
        if (response.status === 200) {
          status.ready.push(where);
          return;
        }
        const body = (await response.json().catch(() => ({}))) as { checks?: Record<string, unknown> };
        const failing = Object.entries(body.checks ?? {})
          .filter(([, ok]) => ok !== true)
          .map(([check]) => check);
        status.notReady.push(failing.length > 0 ? `${where}: ${failing.join(', ')} not ready` : where);
      } catch {
        status.down.push(where);
      }
    }),
  );
  return status;
}

/** Posts one signed delivery to the ingress and reads its answer. */
export async function postDelivery(
  ingressUrl: string,
  delivery: ScenarioDelivery,
  headers: Record<string, string>,
): Promise<IngressAnswer> {
  const route = delivery.provider === 'smartcar' ? '/webhooks/smartcar' : '/webhooks/telematica';
  try {
    const response = await fetch(new URL(route, ingressUrl), {
      method: 'POST',
      headers,
      body: delivery.body,
      signal: AbortSignal.timeout(15_000),
    });
    const body = (await response.json().catch(() => ({}))) as {
      status?: string;
      error?: { code?: string };
    };
    return {
      step: delivery.step,
      httpStatus: response.status,
      status: body.status ?? body.error?.code ?? 'unreadable_answer',
    };
  } catch {
    return { step: delivery.step, httpStatus: 0, status: 'unreachable' };
  }
}

/** The demo endpoint's `owner` label: the console's Endpoints page and a portal link for `demo` show it. */
export const DEMO_OWNER = 'demo';

/** An endpoint as the admin API lists it (the fields the demo reads). */
export interface EndpointSummary {
  id: string;
  url: string;
  owner: string | null;
}

/** The notifier's admin API, as much of it as the demo uses. */
export interface AdminClient {
  /** Creates an endpoint; resolves to its id and signing secret. */
  createEndpoint(body: Record<string, unknown>): Promise<{ id: string; secret: string }>;
  /** The endpoints labelled `owner`. */
  listEndpoints(owner: string): Promise<EndpointSummary[]>;
  /** Changes an endpoint (`PATCH`); resolves to its signing secret. */
  updateEndpoint(id: string, patch: Record<string, unknown>): Promise<{ id: string; secret: string }>;
  deleteEndpoint(id: string): Promise<void>;
}

export function createAdminClient(notifierUrl: string, token: string): AdminClient {
  const call = async (method: string, path: string, body?: unknown) => {
    let response: Response;
    try {
      response = await fetch(new URL(`/v1${path}`, notifierUrl), {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (err) {
      throw new DependencyError('notifier_unavailable', `the notifier admin API did not answer`, {
        cause: err,
      });
    }
    const text = await response.text();
    let parsed: {
      id?: string;
      secret?: string;
      data?: EndpointSummary[];
      error?: { code?: string; message?: string };
    } = {};
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      // An answer that is not JSON is described by its status below.
    }
    return { status: response.status, body: parsed };
  };
  const refused = (what: string, status: number, answer: { error?: { code?: string; message?: string } }) =>
    new DependencyError(
      'endpoint_refused',
      `the notifier did not ${what} (${answer.error ? `${answer.error.code}: ${answer.error.message}` : `status ${status}`})`,
    );
  return {
    async createEndpoint(body) {
      const { status, body: answer } = await call('POST', '/endpoints', body);
      if (status !== 201 || !answer.id || !answer.secret)
        throw refused('create the demo endpoint', status, answer);
      return { id: answer.id, secret: answer.secret };
    },
    async listEndpoints(owner) {
      const { status, body: answer } = await call('GET', `/endpoints?owner=${encodeURIComponent(owner)}`);
      if (status !== 200 || !Array.isArray(answer.data)) throw refused('list the endpoints', status, answer);
      return answer.data.map((e) => ({ id: e.id, url: e.url, owner: e.owner ?? null }));
    },
    async updateEndpoint(id, patch) {
      const path = `/endpoints/${encodeURIComponent(id)}`;
      const updated = await call('PATCH', path, patch);
      if (updated.status !== 200) throw refused(`update ${id}`, updated.status, updated.body);
      const { status, body: answer } = await call('GET', `${path}/secret`);
      if (status !== 200 || !answer.secret) throw refused(`reveal the secret of ${id}`, status, answer);
      return { id, secret: answer.secret };
    },
    async deleteEndpoint(id) {
      const { status } = await call('DELETE', `/endpoints/${encodeURIComponent(id)}`);
      if (status >= 300 && status !== 404)
        throw new DependencyError(
          'endpoint_not_deleted',
          `the notifier answered ${status} to deleting ${id}`,
        );
    },
  };
}
