import type { Json } from './notifier-client';

/**
 * What a portal session (one `owner`) may see of the notifier's answers. Pure: the proxy fetches, these decide.
 * Every list is filtered here even when the notifier was already asked for the owner's rows only, so a notifier
 * that ignores a query parameter cannot leak another owner's data.
 */

/** Whether an endpoint (as the notifier answers it) belongs to `owner`. */
export const isOwnedBy = (endpoint: Json, owner: string): boolean =>
  typeof endpoint === 'object' && endpoint !== null && endpoint.owner === owner;

/** The ids of the owner's endpoints, from `GET /v1/endpoints`'s `data`. */
export function ownedEndpointIds(list: Json, owner: string): Set<string> {
  const data: Json[] = Array.isArray(list?.data) ? list.data : [];
  return new Set(data.filter((e) => isOwnedBy(e, owner)).map((e) => String(e.id)));
}

/**
 * A row's endpoint ids: `endpointId` (attempts, dead letters), `endpoints[].endpointId` (the notifier's message
 * summaries and details: one entry per endpoint a message went to), or `endpointIds`.
 */
function endpointIdsOf(row: Json): string[] {
  if (typeof row !== 'object' || row === null) return [];
  if (typeof row.endpointId === 'string') return [row.endpointId];
  if (Array.isArray(row.endpoints)) return row.endpoints.map((e: Json) => String(e?.endpointId));
  if (Array.isArray(row.endpointIds)) return row.endpointIds.map(String);
  return [];
}

/** The row with its per-endpoint lists cut to the owned endpoints (another owner's delivery states stay hidden). */
function withOwnedEndpoints(row: Json, owned: ReadonlySet<string>): Json {
  const scoped: Json = { ...row };
  if (Array.isArray(row.endpoints))
    scoped.endpoints = row.endpoints.filter((e: Json) => owned.has(String(e?.endpointId)));
  if (Array.isArray(row.endpointIds))
    scoped.endpointIds = row.endpointIds.filter((id: string) => owned.has(id));
  return scoped;
}

/** Rows (messages, attempts, dead letters) that concern one of `owned` only. Rows naming no endpoint are dropped. */
export function rowsOf(rows: Json, owned: ReadonlySet<string>): Json[] {
  if (!Array.isArray(rows)) return [];
  return rows
    .filter((row) => endpointIdsOf(row).some((id) => owned.has(id)))
    .map((row) => withOwnedEndpoints(row, owned));
}

/** `{ data: rows, ...rest }` with the rows scoped; other fields (`nextCursor`) kept. */
export function scopeList(answer: Json, owned: ReadonlySet<string>): Json {
  return { ...(answer ?? {}), data: rowsOf(answer?.data, owned) };
}

/**
 * A message (`GET /v1/messages/:id`) with only the owner's attempts; null when it concerns none of the owner's
 * endpoints (the proxy answers 404 then, as for a message that does not exist).
 */
export function scopeMessage(message: Json, owned: ReadonlySet<string>): Json | null {
  if (typeof message !== 'object' || message === null) return null;
  const attempts = rowsOf(message.attempts, owned);
  const own = endpointIdsOf(message).some((id) => owned.has(id));
  if (!own && attempts.length === 0) return null;
  return { ...withOwnedEndpoints(message, owned), attempts };
}
