import { Topics, type ChargingSession } from '@ampflow/contracts';
import { formatTable, type Cell } from '@ampflow/ops';
import { webhookVehicle, type Progress, type SeenRecord, type VerifiedWebhook } from './outcome';
import type { Scenario } from './scenario';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

/** `smartcar:829e30ab-…` → `smartcar:829e30ab…`: ids stay recognisable and the tables fit a terminal. */
export function shortId(id: string | null | undefined, keep = 8): string {
  if (!id) return '-';
  const colon = id.indexOf(':');
  const head = colon >= 0 ? id.slice(0, colon + 1) : '';
  const tail = colon >= 0 ? id.slice(colon + 1) : id;
  const skip = tail.startsWith('msg_') ? 4 : 0;
  return tail.length <= keep + skip + 1 ? id : `${head}${tail.slice(0, keep + skip)}…`;
}

/** `HH:MM:SS` (UTC) of an epoch-ms time or an ISO string. */
export function clock(time: number | string | null | undefined): string {
  if (time === null || time === undefined) return '-';
  return new Date(time).toISOString().slice(11, 19);
}

const num = (value: number | null | undefined, unit: string, digits = 1) =>
  value === null || value === undefined ? null : `${Number(value.toFixed(digits))} ${unit}`;
const join = (...parts: Array<string | null | false | undefined>) => parts.filter(Boolean).join(' ');

const TOPIC_ORDER: string[] = [
  Topics.deviceLinks,
  Topics.vehicleTelemetry,
  Topics.commandResults,
  Topics.vehicleErrors,
];

function telemetryDetail(v: Json, late: boolean): string {
  return join(
    clock(v.occurredAt),
    v.isPluggedIn === true ? 'plugged' : v.isPluggedIn === false ? 'unplugged' : null,
    v.chargingState && v.chargingState !== 'UNKNOWN' ? v.chargingState : v.isCharging ? 'charging' : null,
    v.stateOfChargePercent !== null && `SOC ${v.stateOfChargePercent}%`,
    v.targetSocPercent !== null && `target ${v.targetSocPercent}%`,
    v.chargePowerKw ? num(v.chargePowerKw, 'kW') : null,
    v.energyAddedKwh !== null && `added ${num(v.energyAddedKwh, 'kWh')}`,
    late && '← late: older than a reading already applied',
  );
}

function recordDetail(record: SeenRecord, late: boolean): string {
  const v = record.value;
  switch (record.topic) {
    case Topics.vehicleTelemetry:
      return telemetryDetail(v, late);
    case Topics.deviceLinks:
      return join(
        v.change,
        ...v.devices.map((d: Json) => join(shortId(d.vehicleId), d.make, d.model, d.year && String(d.year))),
      );
    case Topics.commandResults:
      return join(v.action, `(${v.providerAction})`, v.success ? 'success' : 'failed', v.code);
    case Topics.vehicleErrors:
      return v.errors.map((e: Json) => join(`${e.type}${e.code ? `/${e.code}` : ''}`, e.state)).join('; ');
    default:
      return '';
  }
}

/** The canonical records the demo read, in the scenario's order; late readings are marked. */
export function renderRecords(scenario: Scenario, records: readonly SeenRecord[]): string {
  const order = new Map(scenario.expected.records.map((r, i) => [r.eventId, i]));
  // "Late" as the aggregator sees it: older than a reading of the same vehicle that arrived before it.
  const newest = new Map<string, number>();
  const late = new Set<SeenRecord>();
  for (const r of records) {
    if (r.topic !== Topics.vehicleTelemetry) continue;
    const before = newest.get(r.key);
    if (before !== undefined && r.value.occurredAt < before) late.add(r);
    else newest.set(r.key, r.value.occurredAt);
  }
  const sorted = [...records].sort(
    (a, b) =>
      (order.get(a.eventId) ?? Number.MAX_SAFE_INTEGER) - (order.get(b.eventId) ?? Number.MAX_SAFE_INTEGER) ||
      TOPIC_ORDER.indexOf(a.topic) - TOPIC_ORDER.indexOf(b.topic),
  );
  return formatTable(
    ['topic', 'event id', 'key', 'fields'],
    sorted.map((r) => [r.topic, shortId(r.eventId), shortId(r.key), recordDetail(r, late.has(r))]),
  );
}

/** The session changes, per vehicle in version order. */
export function renderSessions(sessions: readonly ChargingSession[]): string {
  const sorted = [...sessions].sort(
    (a, b) => a.vehicleId.localeCompare(b.vehicleId) || a.version - b.version,
  );
  return formatTable(
    [
      'session',
      'vehicle',
      'change',
      'started',
      'ended',
      'SOC start→end',
      'energy',
      'max power',
      'end reason',
    ],
    sorted.map((s): Cell[] => [
      shortId(s.sessionId),
      shortId(s.vehicleId),
      `${s.change} v${s.version}`,
      clock(s.startedAt),
      s.endedAt === null ? null : clock(s.endedAt),
      `${s.socStartPercent ?? '?'}→${s.socEndPercent ?? '?'}%`,
      s.energyAddedKwh === null ? s.energySource : `${num(s.energyAddedKwh, 'kWh')} ${s.energySource}`,
      num(s.maxPowerKw, 'kW'),
      s.endReason,
    ]),
  );
}

function vehicleName(data: Json): string | null {
  const v = data.vehicle ?? (Array.isArray(data.devices) ? data.devices[0] : null);
  if (!v || (!v.make && !v.model)) return null;
  return join(v.make, v.model, v.year && String(v.year));
}

function webhookDetail(w: VerifiedWebhook): string {
  const d = w.data;
  if (w.type.startsWith('charging_session.'))
    return join(
      `v${d.version}`,
      d.status,
      `SOC ${d.socStartPercent ?? '?'}→${d.socEndPercent ?? '?'}%`,
      d.energyAddedKwh !== null && num(d.energyAddedKwh, 'kWh'),
      d.endReason,
    );
  switch (w.type) {
    case 'vehicle.telemetry':
      return telemetryDetail({ ...d, occurredAt: d.occurredAt }, false);
    case 'vehicle.plugged_in':
    case 'vehicle.unplugged':
      return join(clock(d.occurredAt), d.stateOfChargePercent !== null && `SOC ${d.stateOfChargePercent}%`);
    case 'command.result':
      return join(d.action, d.success ? 'success' : 'failed', d.code);
    case 'device.connected':
    case 'device.disconnected':
      return join(`user ${shortId(d.userId)}`, `${d.devices.length} device(s)`);
    case 'vehicle.error':
      return d.errors.map((e: Json) => join(`${e.type}${e.code ? `/${e.code}` : ''}`, e.state)).join('; ');
    default:
      return '';
  }
}

/** The customer webhooks the sink verified, per vehicle in arrival order. */
export function renderWebhooks(webhooks: readonly VerifiedWebhook[]): string {
  const sorted = [...webhooks].sort((a, b) =>
    String(webhookVehicle(a)).localeCompare(String(webhookVehicle(b))),
  );
  return formatTable(
    ['webhook-id', 'type', 'vehicle', 'make / model', 'data'],
    sorted.map((w) => [w.id, w.type, shortId(webhookVehicle(w)), vehicleName(w.data), webhookDetail(w)]),
  );
}

/** The vehicles of this run, for the header. */
export function renderVehicles(scenario: Scenario): string {
  const { smartcar, telematica } = scenario.vehicles;
  return formatTable(
    ['vehicle', 'provider', 'make / model'],
    [smartcar, telematica].map((v) => [v.vehicleId, v.provider, `${v.make} ${v.model} ${v.year}`]),
  );
}

/** The closing summary: counts, then every problem. */
export function renderVerdict(progress: Progress): string {
  const counts =
    `${progress.records.seen}/${progress.records.expected} records, ` +
    `${progress.sessions.seen}/${progress.sessions.expected} session changes, ` +
    `${progress.webhooks.seen}/${progress.webhooks.expected} verified webhooks`;
  if (progress.complete && progress.problems.length === 0) return `OK: ${counts}, as expected.`;
  return [`FAILED: ${counts}.`, ...progress.problems.map((p) => `  - ${p}`)].join('\n');
}
