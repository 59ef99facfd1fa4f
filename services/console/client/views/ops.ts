import type { Chart } from 'chart.js';
import { api, type Json } from '../api';
import { field, h, render, say, table, text, when } from '../dom';
import { lineChart } from '../charts';
import { attemptsTable } from './messages';

/**
 * Event trace: `GET /api/ops/trace?eventId=…|vehicle=…` →
 * `{ retention: { maxEvents, maxAgeMs, heldRecords, oldestRecordAt }, data: Trace[] }`, Trace =
 * `{ eventId, raw: Record[], deadLetters: Record[], canonical: Record[], sessionChanges: (Record & { session })[],
 *    webhooks: { messageId, type, sourceId, attempts: Attempt[] | null, error? }[] }`,
 * Record = `{ topic, partition, offset, timestamp, key, headers, value }` (values redacted by the data module).
 */
export async function traceView(main: HTMLElement): Promise<void> {
  const eventId = h('input', { type: 'text', name: 'eventId' });
  const vehicle = h('input', { type: 'text', name: 'vehicle' });
  const results = h('section', { 'aria-live': 'polite', id: 'trace-results' });
  const form = h(
    'form',
    { class: 'card filters', 'aria-label': 'Trace lookup' },
    field('Provider event id', eventId),
    field('or vehicle', vehicle),
    h('button', { type: 'submit' }, 'Trace'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const q = eventId.value
      ? `eventId=${encodeURIComponent(eventId.value)}`
      : `vehicle=${encodeURIComponent(vehicle.value)}`;
    api('GET', `/api/ops/trace?${q}`).then(
      (answer: Json) => {
        const traces: Json[] = answer?.data ?? [];
        const kept = answer?.retention;
        const note = kept
          ? h(
              'p',
              {},
              `The trace keeps the last ${kept.maxEvents} records for at most ${Math.round(kept.maxAgeMs / 3_600_000)} h; it holds ${kept.heldRecords} now, the oldest from ${when(kept.oldestRecordAt)}.`,
            )
          : null;
        results.replaceChildren(
          ...[note].filter((n): n is HTMLParagraphElement => n !== null),
          ...(traces.length === 0
            ? [h('p', {}, 'Nothing found within the trace retention.')]
            : traces.map(traceEvent)),
        );
      },
      (error: Error) =>
        results.replaceChildren(h('p', { class: 'error' }, `Trace not available: ${error.message}`)),
    );
  });
  render(
    main,
    'Event trace',
    h(
      'p',
      {},
      'One provider event, or the recent events of a vehicle, from the raw record to the customer webhooks.',
    ),
    form,
    results,
  );
}

const recordsTable = (caption: string, records: Json[]) =>
  records.length === 0
    ? h('p', {}, `${caption}: none.`)
    : table(
        caption,
        ['Topic', 'Partition/offset', 'Time', 'Key', 'Value'],
        records.map((r) => [
          r.topic,
          `${r.partition}/${r.offset}`,
          when(r.timestamp),
          h('code', {}, text(r.key)),
          h(
            'pre',
            { class: 'record', tabindex: 0, 'aria-label': `Value of ${r.topic} ${r.partition}/${r.offset}` },
            JSON.stringify(r.value, null, 1),
          ),
        ]),
      );

function traceEvent(e: Json): HTMLElement {
  return h(
    'article',
    { class: 'card trace' },
    h('h2', {}, `Event ${text(e.eventId)}`),
    recordsTable('Raw record', e.raw ?? []),
    (e.deadLetters ?? []).length > 0 ? recordsTable('Dead letters', e.deadLetters) : null,
    recordsTable('Canonical records', e.canonical ?? []),
    (e.sessionChanges ?? []).length === 0
      ? h('p', {}, 'Session changes: none.')
      : table(
          'Session changes',
          ['Session', 'Version', 'Status', 'Time', 'Energy (kWh)', 'End reason'],
          (e.sessionChanges ?? []).map((c: Json) => [
            h('code', {}, text(c.session?.sessionId)),
            text(c.session?.version),
            text(c.session?.status),
            when(c.timestamp),
            text(c.session?.energyAddedKwh),
            text(c.session?.endReason),
          ]),
        ),
    h('h3', {}, 'Customer webhooks'),
    ...((e.webhooks ?? []).length === 0
      ? [h('p', {}, 'None.')]
      : (e.webhooks ?? []).map((w: Json) =>
          h(
            'div',
            {},
            h('p', {}, `${text(w.type)} `, h('code', {}, text(w.messageId)), w.error ? ` (${w.error})` : ''),
            w.attempts ? attemptsTable(`Attempts of ${w.messageId}`, w.attempts) : null,
          ),
        )),
  );
}

/**
 * Charging sessions.
 * - Per vehicle: `GET /api/ops/vehicles/:vehicle/sessions` → `{ data: Session[] }`, Session = `{ sessionId,
 *   vehicleId, provider, status, startedAt, endedAt, durationSeconds, energyAddedKwh, socStartPercent,
 *   socEndPercent, maxPowerKw, endReason, eventCount, version }`.
 * - One session: `GET /api/ops/sessions/:id` → `{ session, series: { at, socPercent, powerKw }[], seriesComplete }`.
 * - Fleet: `GET /api/ops/sessions/open` → `{ data: Session[] }`.
 */
export async function sessionsView(main: HTMLElement): Promise<void> {
  const vehicle = h('input', { type: 'text', name: 'vehicle' });
  const list = h('section', { 'aria-live': 'polite', id: 'session-list' });
  const chart = h('section', { id: 'session-chart' });
  const sessionsTable = (caption: string, rows: Json[]) =>
    rows.length === 0
      ? h('p', {}, 'No sessions.')
      : table(
          caption,
          [
            'Session',
            'Vehicle',
            'Status',
            'Start',
            'End',
            'Energy (kWh)',
            'SOC start',
            'SOC end',
            'End reason',
            '',
          ],
          rows.map((s) => [
            h('code', {}, s.sessionId),
            text(s.vehicleId),
            text(s.status),
            when(s.startedAt),
            when(s.endedAt),
            text(s.energyAddedKwh),
            s.socStartPercent == null ? '—' : `${s.socStartPercent} %`,
            s.socEndPercent == null ? '—' : `${s.socEndPercent} %`,
            text(s.endReason),
            h(
              'button',
              {
                type: 'button',
                'aria-label': `Chart of ${s.sessionId}`,
                onclick: () => void showChart(s.sessionId),
              },
              'Chart',
            ),
          ]),
        );
  const showChart = async (sessionId: string) => {
    try {
      const answer = await api('GET', `/api/ops/sessions/${encodeURIComponent(sessionId)}`);
      const series: Json[] = answer.series ?? [];
      lineChart(
        chart,
        `SOC (%) and power (kW) over session ${sessionId}${answer.seriesComplete === false ? ' (its start is older than the trace retention)' : ''}`,
        series.map((p) => new Date(p.at).toLocaleTimeString()),
        [
          { label: 'SOC %', values: series.map((p) => p.socPercent ?? null) },
          { label: 'Power kW', values: series.map((p) => p.powerKw ?? null), right: true },
        ],
      );
    } catch (error) {
      chart.replaceChildren(h('p', { class: 'error' }, `Chart not available: ${(error as Error).message}`));
    }
  };
  const form = h(
    'form',
    { class: 'card filters', 'aria-label': 'Sessions of a vehicle' },
    field('Vehicle', vehicle),
    h('button', { type: 'submit' }, 'Show sessions'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    api('GET', `/api/ops/vehicles/${encodeURIComponent(vehicle.value)}/sessions`).then(
      (answer: Json) =>
        list.replaceChildren(sessionsTable(`Sessions of ${vehicle.value}`, answer.data ?? [])),
      (error: Error) =>
        list.replaceChildren(h('p', { class: 'error' }, `Sessions not available: ${error.message}`)),
    );
  });
  const open = h('section', { id: 'open-sessions' });
  render(main, 'Charging sessions', form, list, chart, h('h2', {}, 'Open sessions (fleet)'), open);
  api('GET', '/api/ops/sessions/open').then(
    (answer: Json) => open.replaceChildren(sessionsTable('Open sessions', answer.data ?? [])),
    (error: Error) =>
      open.replaceChildren(h('p', { class: 'error' }, `Open sessions not available: ${error.message}`)),
  );
}

/**
 * Pipeline health: `GET /api/ops/pipeline` → `{ intervalMs, data: { at, consumerLag: Record<group, number>,
 * recordsPerSecond: Record<service, number | null>, deadLetters: Record<topic, number>,
 * deliveriesPerSecond: number | null, failureRate: number | null, errors: string[] }[] }`, oldest first.
 * Refreshed every 5 s while the view is open.
 */
let pipelineTimer: number | undefined;
export function stopPipeline(): void {
  if (pipelineTimer !== undefined) window.clearInterval(pipelineTimer);
  pipelineTimer = undefined;
}

export async function pipelineView(main: HTMLElement): Promise<void> {
  const boxes = {
    lag: h('div', { class: 'mini' }),
    rate: h('div', { class: 'mini' }),
    dlq: h('div', { class: 'mini' }),
    deliveries: h('div', { class: 'mini' }),
  };
  const note = h('p', { 'aria-live': 'polite' });
  render(
    main,
    'Pipeline health',
    note,
    h('div', { class: 'grid' }, boxes.lag, boxes.rate, boxes.dlq, boxes.deliveries),
  );
  const charts: Chart[] = [];
  const keyed = (samples: Json[], field: string) => {
    const keys = [...new Set(samples.flatMap((s) => Object.keys(s[field] ?? {})))];
    return keys.map((key) => ({
      label: key,
      values: samples.map((s) => (s[field]?.[key] ?? null) as number | null),
    }));
  };
  const refresh = async () => {
    try {
      const answer = await api('GET', '/api/ops/pipeline');
      const samples: Json[] = answer.data ?? [];
      const labels = samples.map((s) => new Date(s.at).toLocaleTimeString());
      charts.splice(0).forEach((c) => c.destroy());
      charts.push(
        lineChart(boxes.lag, 'Consumer lag per group (records)', labels, keyed(samples, 'consumerLag')),
        lineChart(boxes.rate, 'Records per second per service', labels, keyed(samples, 'recordsPerSecond')),
        lineChart(boxes.dlq, 'Dead letters per topic', labels, keyed(samples, 'deadLetters')),
        lineChart(boxes.deliveries, 'Deliveries per second and failure rate', labels, [
          { label: 'deliveries/s', values: samples.map((s) => s.deliveriesPerSecond ?? null) },
          { label: 'failure rate', values: samples.map((s) => s.failureRate ?? null), right: true },
        ]),
      );
      const errors: string[] = samples.at(-1)?.errors ?? [];
      note.textContent = `Updated ${new Date().toLocaleTimeString()}; refreshes every 5 s.${errors.length ? ` Not read: ${errors.join('; ')}` : ''}`;
    } catch (error) {
      note.textContent = `Pipeline data not available: ${(error as Error).message}`;
    }
  };
  await refresh();
  if (!main.isConnected) return;
  stopPipeline();
  pipelineTimer = window.setInterval(() => void refresh(), 5_000);
}

/** Portal links: `POST /api/portal-links {owner, ttlMinutes}` → `{ owner, path, expiresAt }`. */
export async function portalLinksView(main: HTMLElement): Promise<void> {
  const owner = h('input', { type: 'text', name: 'owner', required: true });
  const ttl = h('input', { type: 'number', name: 'ttlMinutes', min: 1, value: 1440 });
  const out = h('section', { 'aria-live': 'polite', id: 'portal-link-out' });
  const form = h(
    'form',
    { class: 'card', 'aria-label': 'Mint a portal link' },
    field('Owner', owner, 'The owner label of the customer’s endpoints'),
    field('Valid for (minutes)', ttl),
    h('button', { type: 'submit' }, 'Create link'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    api('POST', '/api/portal-links', { owner: owner.value.trim(), ttlMinutes: Number(ttl.value) }).then(
      (link: Json) => {
        const url = h('input', {
          type: 'text',
          readonly: true,
          value: `${window.location.origin}${link.path}`,
          id: 'portal-link-url',
        });
        out.replaceChildren(field(`Link for ${link.owner}, valid until ${when(link.expiresAt)}`, url));
        url.select();
      },
      (error: Error) => say(`No link: ${error.message}`, 'error'),
    );
  });
  render(
    main,
    'Portal links',
    h(
      'p',
      {},
      'Whoever opens a portal link sees and manages only the endpoints, messages and attempts of its owner, until it expires.',
    ),
    form,
    out,
  );
}
