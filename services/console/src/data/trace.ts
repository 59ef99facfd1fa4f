import { PROVIDERS, type ChargingSession, type VehicleTelemetry } from '@ampflow/contracts';
import type { AttemptRecord } from './notifier-client';
import { redact } from './redact';
import { changesCausedBy, sessionView, type Attribution, type SessionView } from './sessions';
import type { IndexedRecord, TraceIndex } from './trace-index';
import { webhookCandidates, type CanonicalValue } from './webhook-ids';

const TELEMETRY = 'ev.vehicle-telemetry.v1';
const SESSIONS = 'ev.charging-sessions.v1';

/** A record as the trace shows it: where it sits in Kafka, its headers, and its value redacted. */
export interface RecordView {
  topic: string;
  partition: number;
  offset: string;
  timestamp: string;
  key: string | null;
  headers: Record<string, string>;
  value: unknown;
}

export interface WebhookView {
  messageId: string;
  type: string;
  sourceId: string;
  /** Newest first, from the notifier; null when the notifier could not be asked. */
  attempts: AttemptRecord[] | null;
  error?: string;
}

/** Everything the console knows about one provider event. */
export interface TraceView {
  /** `<provider>:<provider event id>`, the canonical records' `eventId`. */
  eventId: string;
  raw: RecordView[];
  deadLetters: RecordView[];
  canonical: RecordView[];
  sessionChanges: (RecordView & { session: SessionView; attribution: Attribution })[];
  webhooks: WebhookView[];
}

function isUndecodable(value: unknown): boolean {
  return typeof value !== 'object' || value === null || 'undecodable' in value;
}

/** A raw body kept as text is shown as JSON when it is JSON. */
function shown(r: IndexedRecord): unknown {
  if (typeof r.value !== 'string') return r.value;
  try {
    return JSON.parse(r.value) as unknown;
  } catch {
    return r.value;
  }
}

function view(r: IndexedRecord): RecordView {
  return {
    topic: r.topic,
    partition: r.partition,
    offset: r.offset,
    timestamp: new Date(r.timestampMs).toISOString(),
    key: r.key,
    headers: redact(r.headers) as Record<string, string>,
    value: redact(shown(r)),
  };
}

/**
 * The trace ids a query names: the id as given when the index has it (`smartcar:<id>`), else the provider's own
 * event id under each provider's prefix.
 */
export function resolveTraceIds(index: TraceIndex, eventId: string): string[] {
  if (index.byTraceId(eventId).length > 0) return [eventId];
  return PROVIDERS.map((p) => `${p}:${eventId}`).filter((id) => index.byTraceId(id).length > 0);
}

/** Runs `fn` over `items` with at most `limit` at a time, results in order. */
async function mapLimited<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/**
 * Assembles the traces of `traceIds` from the index; the customer webhooks' attempts are asked of the notifier
 * (at most 8 requests at a time). A webhook the notifier may not have made (a plug change) is shown only when
 * it has attempts.
 */
export async function buildTraces(
  index: TraceIndex,
  traceIds: string[],
  attemptsOf: (messageId: string) => Promise<AttemptRecord[]>,
): Promise<TraceView[]> {
  const traces = traceIds.map((eventId) => {
    const records = index.byTraceId(eventId);
    const canonical = records.filter((r) => r.kind === 'canonical');
    // A record that could not be decoded is shown with its reason, but names no webhook and no reading.
    const decoded = canonical.filter((r) => !isUndecodable(r.value));
    const sessionChanges: TraceView['sessionChanges'] = [];
    const candidates = decoded.flatMap((r) =>
      webhookCandidates({ stream: r.stream, value: r.value } as CanonicalValue),
    );
    for (const r of decoded.filter((c) => c.stream === TELEMETRY)) {
      const reading = r.value as VehicleTelemetry;
      const readings = index
        .recordsOfVehicle(reading.vehicleId, TELEMETRY)
        .filter((t) => !isUndecodable(t.value))
        .map((t) => t.value as VehicleTelemetry);
      const changeRecords = index.recordsOfVehicle(reading.vehicleId, SESSIONS);
      const byChange = new Map(changeRecords.map((c) => [c.value as ChargingSession, c]));
      for (const { change, attribution } of changesCausedBy(reading, readings, [...byChange.keys()])) {
        sessionChanges.push({ ...view(byChange.get(change)!), session: sessionView(change), attribution });
        candidates.push(...webhookCandidates({ stream: SESSIONS, value: change }));
      }
    }
    return {
      eventId,
      raw: records.filter((r) => r.kind === 'raw').map(view),
      deadLetters: records.filter((r) => r.kind === 'dead-letter').map(view),
      canonical: canonical.map(view),
      sessionChanges,
      candidates,
    };
  });

  const all = traces.flatMap((t) => t.candidates);
  const answers = await mapLimited(all, 8, async (c) => {
    try {
      return { attempts: await attemptsOf(c.messageId) };
    } catch (err) {
      return { attempts: null, error: (err as Error).message };
    }
  });
  const byId = new Map(all.map((c, i) => [c.messageId, answers[i]!]));
  return traces.map(({ candidates, ...trace }) => ({
    ...trace,
    webhooks: candidates
      .map((c) => ({
        messageId: c.messageId,
        type: c.type,
        sourceId: c.sourceId,
        certain: c.certain,
        ...byId.get(c.messageId)!,
      }))
      .filter((w) => w.certain || (w.attempts !== null && w.attempts.length > 0))
      .map(({ certain: _certain, ...w }) => w),
  }));
}
