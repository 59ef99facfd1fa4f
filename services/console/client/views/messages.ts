import { api, query, role, type Json } from '../api';
import { field, h, render, say, table, text, when } from '../dom';

/**
 * Messages and attempts.
 * - Log: `GET /api/v1/messages?endpointId&eventType&vehicle&status&since&until&limit` →
 *   `{ data: { id, type, vehicleId?, createdAt, endpoints: { endpointId, status, attempts, lastStatusCode?,
 *   nextAttemptAt? }[] }[], nextCursor? }` (status: delivered, failed, pending or dead).
 * - Attempts of a message: `GET /api/v1/messages/:id/attempts` → `{ data: Attempt[] }`; of an endpoint:
 *   `GET /api/v1/endpoints/:id/attempts` → same; Attempt = `{ messageId, endpointId, eventType, attempt, status,
 *   httpStatus, durationMs, responseExcerpt, error, at, next, nextAttemptAt? }`.
 * - Retry one: `POST /api/v1/messages/:id/retry {endpointId}`; retry the filtered selection:
 *   `POST /api/v1/messages/retry { endpointId?, eventType?, status?: failed|dead, since?, until? }`; recover: `POST /api/v1/endpoints/:id/recover {since}`.
 */
export function attemptsTable(caption: string, attempts: Json[], onRetry?: (a: Json) => void): HTMLElement {
  return table(
    caption,
    [
      'Message',
      'Endpoint',
      'Attempt',
      'Time',
      'Result',
      'HTTP',
      'Duration',
      'Response',
      'Next',
      'Next attempt',
      '',
    ],
    attempts.map((a) => [
      h('code', {}, a.messageId),
      h('code', {}, a.endpointId),
      a.attempt,
      when(a.at),
      h('span', { class: a.status === 'succeeded' ? 'ok' : 'bad' }, a.status),
      text(a.httpStatus),
      `${a.durationMs} ms`,
      h('span', { class: 'excerpt' }, text(a.responseExcerpt ?? a.error)),
      a.next,
      when(a.nextAttemptAt),
      onRetry
        ? h(
            'button',
            { type: 'button', 'aria-label': `Retry ${a.messageId}`, onclick: () => onRetry(a) },
            'Retry',
          )
        : '',
    ]),
  );
}

export async function endpointOptions(select: HTMLSelectElement, includeAll: boolean): Promise<Json[]> {
  const endpoints: Json[] = (await api('GET', '/api/v1/endpoints')).data ?? [];
  select.replaceChildren(
    ...(includeAll ? [h('option', { value: '' }, 'All endpoints')] : []),
    ...endpoints.map((e) =>
      h('option', { value: e.id }, `${e.id} ${e.description ? `(${e.description})` : e.url}`),
    ),
  );
  return endpoints;
}

export async function messagesView(main: HTMLElement): Promise<void> {
  const portal = role() === 'portal';
  const endpoint = h('select', { name: 'endpointId' });
  const eventType = h('input', { type: 'text', name: 'eventType' });
  const vehicle = h('input', { type: 'text', name: 'vehicle' });
  const status = h(
    'select',
    { name: 'status' },
    ...['', 'delivered', 'failed', 'pending', 'dead'].map((s) =>
      h('option', { value: s }, s || 'Any status'),
    ),
  );
  const since = h('input', { type: 'datetime-local', name: 'since' });
  const until = h('input', { type: 'datetime-local', name: 'until' });
  const results = h('section', { 'aria-live': 'polite', id: 'message-results' });
  const attempts = h('section', { id: 'attempts' });
  const iso = (input: HTMLInputElement) => (input.value ? new Date(input.value).toISOString() : undefined);
  const filter = () => ({
    endpointId: endpoint.value || undefined,
    eventType: eventType.value || undefined,
    vehicle: vehicle.value || undefined,
    status: status.value || undefined,
    since: iso(since),
    until: iso(until),
  });
  const retry = (a: Json) =>
    api('POST', `/api/v1/messages/${a.messageId ?? a.id}/retry`, { endpointId: a.endpointId }).then(
      (r: Json) => say(`Retry queued (${r?.queued ?? 0})`),
      (error: Error) => say(`Retry failed: ${error.message}`, 'error'),
    );
  /** A message as sent (`GET /api/v1/messages/:id`: `{ body, endpoints, attempts }`) and its attempts. */
  const showAttempts = async (m: Json) => {
    const id = String(m.id ?? m.messageId);
    const detail: Json = await api('GET', `/api/v1/messages/${id}`).catch(() => null);
    const list: Json[] = detail?.attempts ?? (await api('GET', `/api/v1/messages/${id}/attempts`)).data ?? [];
    attempts.replaceChildren(
      detail?.body != null
        ? h(
            'details',
            {},
            h('summary', {}, `Body of ${id}`),
            h('pre', {}, JSON.stringify(detail.body, null, 2)),
          )
        : '',
      attemptsTable(`Attempts of ${id}`, list, retry),
    );
  };
  const endpointAttempts = async () => {
    if (!endpoint.value) return;
    const answer = await api('GET', `/api/v1/endpoints/${endpoint.value}/attempts?limit=50`);
    attempts.replaceChildren(attemptsTable(`Latest attempts of ${endpoint.value}`, answer.data ?? [], retry));
  };
  /** The log so far (pages appended by "More messages"). */
  let rows: Json[] = [];
  const search = async (cursor?: string) => {
    try {
      const answer = await api('GET', `/api/v1/messages${query({ ...filter(), cursor })}`);
      rows = cursor ? [...rows, ...(answer.data ?? [])] : (answer.data ?? []);
      const more: string | undefined = answer.nextCursor;
      results.replaceChildren(
        rows.length === 0
          ? h('p', {}, 'No messages match.')
          : table(
              'Messages',
              ['Message', 'Event type', 'Vehicle', 'Created', 'Deliveries', ''],
              rows.map((m) => [
                h('code', {}, m.id ?? m.messageId),
                text(m.type ?? m.eventType),
                text(m.vehicleId ?? m.vehicle),
                when(m.createdAt ?? m.at),
                h(
                  'ul',
                  { class: 'plain' },
                  ...(m.endpoints ?? [{ endpointId: m.endpointId, status: m.status }]).map((d: Json) =>
                    h(
                      'li',
                      {},
                      h('code', {}, text(d.endpointId)),
                      ` ${text(d.status)}`,
                      d.attempts ? `, ${d.attempts} attempt${d.attempts === 1 ? '' : 's'}` : '',
                      d.lastStatusCode ? `, HTTP ${d.lastStatusCode}` : '',
                      d.nextAttemptAt ? `, next ${when(d.nextAttemptAt)}` : '',
                    ),
                  ),
                ),
                h(
                  'button',
                  {
                    type: 'button',
                    'aria-label': `Attempts of ${m.id ?? m.messageId}`,
                    onclick: () => void showAttempts(m).catch((e: Error) => say(e.message, 'error')),
                  },
                  'Attempts',
                ),
              ]),
            ),
        more
          ? h(
              'button',
              {
                type: 'button',
                onclick: () => void search(more).catch((e: Error) => say(e.message, 'error')),
              },
              'More messages',
            )
          : '',
      );
    } catch (error) {
      results.replaceChildren(
        h('p', { class: 'error' }, `Message log not available: ${(error as Error).message}`),
      );
    }
    if (!cursor) await endpointAttempts().catch((error: Error) => say(error.message, 'error'));
  };
  const form = h(
    'form',
    { class: 'card filters', 'aria-label': 'Message filters' },
    field('Endpoint', endpoint),
    field('Event type', eventType),
    field('Vehicle', vehicle),
    field('Status', status),
    field('Since', since),
    field('Until', until),
    h('button', { type: 'submit' }, 'Search'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void search();
  });
  const retryAll = h(
    'button',
    {
      type: 'button',
      onclick: () => {
        // The selection the notifier re-sends: failed (a retry is scheduled) or dead deliveries; no vehicle filter.
        const { vehicle: _vehicle, status: chosen, ...rest } = filter();
        const selection = { ...rest, status: chosen === 'failed' || chosen === 'dead' ? chosen : undefined };
        const body = Object.fromEntries(Object.entries(selection).filter(([, v]) => v !== undefined));
        api('POST', '/api/v1/messages/retry', body).then(
          (r: Json) => say(`Retried ${r?.retried ?? 0} messages`),
          (e: Error) => say(`Retry failed: ${e.message}`, 'error'),
        );
      },
    },
    'Retry the filtered selection',
  );
  const recoverSince = h('input', { type: 'datetime-local', name: 'recoverSince', required: true });
  const recover = h(
    'form',
    { class: 'card', 'aria-label': 'Recover endpoint' },
    h('h2', {}, 'Recover failed messages'),
    h('p', {}, 'Sends again every message of the selected endpoint that failed since the time given.'),
    field('Failed since', recoverSince),
    h('button', { type: 'submit' }, 'Recover endpoint'),
  );
  recover.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!endpoint.value) return say('Choose an endpoint first', 'error');
    api('POST', `/api/v1/endpoints/${endpoint.value}/recover`, {
      since: new Date(recoverSince.value).toISOString(),
    }).then(
      (r: Json) => say(`Recovery queued ${r?.queued ?? 0} messages`),
      (e: Error) => say(`Recover failed: ${e.message}`, 'error'),
    );
  });
  render(main, 'Messages', form, retryAll, results, attempts, recover);
  await endpointOptions(endpoint, !portal).catch((error: Error) => say(error.message, 'error'));
  endpoint.addEventListener('change', () => void search());
  await search();
}

/** Dead letters: `GET /api/v1/dead-letters?endpointId&limit` → `{ data: { messageId, endpointId, eventType, reason, lastStatus, lastError, failedAt, attempts }[] }`. */
export async function deadLettersView(main: HTMLElement): Promise<void> {
  const endpoint = h('select', { name: 'endpointId' });
  const results = h('section', { 'aria-live': 'polite' });
  const load = async () => {
    const answer = await api(
      'GET',
      `/api/v1/dead-letters${query({ endpointId: endpoint.value || undefined, limit: '100' })}`,
    );
    const rows: Json[] = answer.data ?? [];
    results.replaceChildren(
      rows.length === 0
        ? h('p', {}, 'No dead letters.')
        : table(
            'Dead letters',
            [
              'Message',
              'Endpoint',
              'Event type',
              'Reason',
              'Last HTTP',
              'Last error',
              'Failed at',
              'Attempts',
              '',
            ],
            rows.map((d) => [
              h('code', {}, d.messageId),
              h('code', {}, d.endpointId),
              d.eventType,
              d.reason,
              text(d.lastStatus),
              text(d.lastError),
              when(d.failedAt),
              d.attempts,
              h(
                'button',
                {
                  type: 'button',
                  'aria-label': `Retry ${d.messageId}`,
                  onclick: () =>
                    api('POST', `/api/v1/messages/${d.messageId}/retry`, { endpointId: d.endpointId }).then(
                      (r: Json) => say(`Retry queued (${r?.queued ?? 0})`),
                      (e: Error) => say(e.message, 'error'),
                    ),
                },
                'Retry',
              ),
            ]),
          ),
    );
  };
  render(main, 'Dead letters', field('Endpoint', endpoint), results);
  await endpointOptions(endpoint, role() !== 'portal').catch((error: Error) => say(error.message, 'error'));
  endpoint.addEventListener('change', () => void load().catch((e: Error) => say(e.message, 'error')));
  await load().catch((error: Error) => results.replaceChildren(h('p', { class: 'error' }, error.message)));
}
