import { api, role, type Json } from '../api';
import { append, field, h, render, say, table, text } from '../dom';

/**
 * Endpoints: `GET /api/v1/endpoints` → `{ data: Endpoint[] }`, each
 * `{ id, url, description, owner?, eventTypes[], vehicleIds[], userIds[], providers[], throttleRate, enabled,
 *    disabledReason, disabledAt, health?: { circuit, failureRate1h, attempts1h, disabledReason? } }`.
 * Create, edit (PATCH), enable/disable, reveal (`GET .../secret`) and rotate the secret, delete, send a test event.
 */
const list = (value: string): string[] =>
  value
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);

function healthText(e: Json): string {
  if (!e.enabled) return `disabled (${e.disabledReason ?? e.health?.disabledReason ?? 'manual'})`;
  const circuit = e.health?.circuit;
  return circuit && circuit !== 'closed' ? `enabled, circuit ${circuit}` : 'enabled';
}

function failureRate(e: Json): string {
  const health = e.health;
  if (!health || typeof health.failureRate1h !== 'number') return '—';
  return `${Math.round(health.failureRate1h * 100)}% of ${health.attempts1h ?? 0}`;
}

function endpointForm(existing: Json | null, onDone: () => void): HTMLFormElement {
  const url = h('input', {
    type: 'url',
    name: 'url',
    required: true,
    value: existing?.url ?? '',
    placeholder: 'https://example.com/webhooks',
  });
  const description = h('input', {
    type: 'text',
    name: 'description',
    maxlength: 500,
    value: existing?.description ?? '',
  });
  const eventTypes = h('input', {
    type: 'text',
    name: 'eventTypes',
    value: (existing?.eventTypes ?? []).join(', '),
  });
  const vehicleIds = h('input', {
    type: 'text',
    name: 'vehicleIds',
    value: (existing?.vehicleIds ?? []).join(', '),
  });
  const userIds = h('input', { type: 'text', name: 'userIds', value: (existing?.userIds ?? []).join(', ') });
  const providers = h('input', {
    type: 'text',
    name: 'providers',
    value: (existing?.providers ?? []).join(', '),
  });
  const throttle = h('input', {
    type: 'number',
    name: 'throttleRate',
    min: 1,
    max: 10000,
    value: existing?.throttleRate ?? '',
  });
  const owner = h('input', { type: 'text', name: 'owner', value: existing?.owner ?? '' });
  const form = h(
    'form',
    { class: 'card', 'aria-label': existing ? `Edit endpoint ${existing.id}` : 'New endpoint' },
    h('h2', {}, existing ? `Edit ${existing.id}` : 'New endpoint'),
    field('URL', url),
    field('Description', description),
    field('Event types', eventTypes, 'Comma-separated; empty for every customer event type'),
    field('Vehicle ids', vehicleIds, 'Comma-separated; empty for every vehicle'),
    field('User ids', userIds, 'Comma-separated; empty for every user'),
    field('Providers', providers, 'Comma-separated (smartcar, telematica); empty for both'),
    field('Throttle (messages per second)', throttle, 'Empty for no limit'),
    role() === 'operator'
      ? field('Owner', owner, 'The customer this endpoint belongs to (for portal links)')
      : null,
    h('button', { type: 'submit' }, existing ? 'Save' : 'Create endpoint'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const body: Json = {
      url: url.value,
      description: description.value,
      eventTypes: list(eventTypes.value),
      vehicleIds: list(vehicleIds.value),
      userIds: list(userIds.value),
      providers: list(providers.value),
      throttleRate: throttle.value ? Number(throttle.value) : null,
    };
    if (role() === 'operator' && owner.value.trim()) body.owner = owner.value.trim();
    const call = existing
      ? api('PATCH', `/api/v1/endpoints/${existing.id}`, body)
      : api('POST', '/api/v1/endpoints', body);
    call.then(
      (saved: Json) => {
        say(existing ? `Saved ${saved.id}` : `Created ${saved.id}`);
        onDone();
      },
      (error: Error) => say(`Not saved: ${error.message}`, 'error'),
    );
  });
  return form;
}

export async function endpointsView(main: HTMLElement): Promise<void> {
  const detail = h('section', { id: 'detail', 'aria-live': 'polite' });
  const reload = () => void endpointsView(main);
  let endpoints: Json[] = [];
  try {
    endpoints = (await api('GET', '/api/v1/endpoints')).data ?? [];
  } catch (error) {
    if (main.isConnected) say(`Endpoints not loaded: ${(error as Error).message}`, 'error');
  }
  const act = (label: string, action: () => Promise<unknown>, e: Json) =>
    h(
      'button',
      {
        type: 'button',
        'aria-label': `${label} ${e.id}`,
        onclick: () =>
          void action().catch((error: Error) => say(`${label} failed: ${error.message}`, 'error')),
      },
      label,
    );
  const rows = endpoints.map((e) => [
    h('code', {}, e.id),
    e.url,
    h('span', { class: 'description' }, text(e.description)),
    text(e.owner),
    healthText(e),
    failureRate(e),
    h(
      'div',
      { class: 'actions' },
      act('Edit', async () => detail.replaceChildren(endpointForm(e, reload)), e),
      act(
        e.enabled ? 'Disable' : 'Enable',
        async () => {
          await api('PATCH', `/api/v1/endpoints/${e.id}`, { enabled: !e.enabled });
          say(`${e.id} ${e.enabled ? 'disabled' : 'enabled'}`);
          reload();
        },
        e,
      ),
      act(
        'Reveal secret',
        async () => {
          const { secret } = await api('GET', `/api/v1/endpoints/${e.id}/secret`);
          detail.replaceChildren(
            h('p', {}, `Signing secret of ${e.id}: `, h('code', { class: 'secret' }, secret)),
          );
        },
        e,
      ),
      act(
        'Rotate secret',
        async () => {
          const { secret } = await api('POST', `/api/v1/endpoints/${e.id}/secret/rotate`);
          detail.replaceChildren(
            h(
              'p',
              {},
              `New signing secret of ${e.id} (the previous one stays valid for the overlap): `,
              h('code', { class: 'secret' }, secret),
            ),
          );
        },
        e,
      ),
      act(
        'Send test event',
        async () => {
          const answer = await api('POST', `/api/v1/endpoints/${e.id}/test`);
          say(`Test event sent to ${e.id}: ${answer?.messageId ?? ''}`);
        },
        e,
      ),
      act(
        'Delete',
        async () => {
          const confirm = h('button', { type: 'button', class: 'danger' }, `Delete ${e.id} for good`);
          const cancel = h('button', { type: 'button' }, 'Cancel');
          confirm.addEventListener('click', () => {
            api('DELETE', `/api/v1/endpoints/${e.id}`).then(
              () => {
                say(`Deleted ${e.id}`);
                reload();
              },
              (error: Error) => say(`Delete failed: ${error.message}`, 'error'),
            );
          });
          cancel.addEventListener('click', () => detail.replaceChildren());
          detail.replaceChildren(
            h(
              'div',
              { class: 'card', role: 'alertdialog', 'aria-label': 'Confirm delete' },
              h('p', {}, `Delete endpoint ${e.id} (${e.url})? Its pending deliveries stop.`),
              confirm,
              ' ',
              cancel,
            ),
          );
          confirm.focus();
        },
        e,
      ),
    ),
  ]);
  const create = h(
    'button',
    { type: 'button', onclick: () => detail.replaceChildren(endpointForm(null, reload)) },
    'New endpoint',
  );
  render(
    main,
    'Endpoints',
    create,
    endpoints.length === 0
      ? h('p', {}, 'No endpoints yet.')
      : table(
          'Endpoints and their health (last hour)',
          ['Id', 'URL', 'Description', 'Owner', 'Status', 'Failures (1 h)', 'Actions'],
          rows,
        ),
    detail,
  );
  append(main);
}
