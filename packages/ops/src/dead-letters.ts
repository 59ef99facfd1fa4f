import { DeadLetterHeaders, RawHeaders } from '@ampflow/contracts';

/** Record headers as kafkajs gives and takes them. */
export type RecordHeaders = Record<string, Buffer | string | (Buffer | string)[] | undefined>;

/** One record read off a dead-letter topic. */
export interface DeadLetterRecord {
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeaders;
}

/** The header a redriven record carries: when the redrive produced it (ISO 8601). */
export const REDRIVEN_AT_HEADER = 'redriven-at';

const DEAD_LETTER_HEADER_NAMES: ReadonlySet<string> = new Set(Object.values(DeadLetterHeaders));

/** A header's text (the first value when repeated), or undefined. */
export function headerText(headers: RecordHeaders, name: string): string | undefined {
  const value = headers[name];
  if (value === undefined) return undefined;
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined ? undefined : first.toString();
}

/** What a dead letter says about itself (DESIGN.md, "Dead letters"). */
export interface DeadLetterInfo {
  errorCode: string;
  errorMessage: string;
  /** `failed-at`, or null when missing or not a date. */
  failedAt: Date | null;
  sourceTopic: string | undefined;
  sourcePartition: number | undefined;
  sourceOffset: string | undefined;
  /** The record's deterministic id: the raw `event-id` header (canonical records carry their eventId there too). */
  eventId: string | undefined;
}

export function describeDeadLetter(record: DeadLetterRecord): DeadLetterInfo {
  const h = (name: string) => headerText(record.headers, name);
  const failedAtText = h(DeadLetterHeaders.failedAt);
  const failedAt = failedAtText === undefined ? null : new Date(failedAtText);
  const partitionText = h(DeadLetterHeaders.sourcePartition);
  const sourcePartition = partitionText === undefined ? undefined : Number(partitionText);
  return {
    errorCode: h(DeadLetterHeaders.errorCode) ?? '(none)',
    errorMessage: h(DeadLetterHeaders.errorMessage) ?? '',
    failedAt: failedAt && !Number.isNaN(failedAt.getTime()) ? failedAt : null,
    sourceTopic: h(DeadLetterHeaders.sourceTopic),
    sourcePartition: Number.isInteger(sourcePartition) ? sourcePartition : undefined,
    sourceOffset: h(DeadLetterHeaders.sourceOffset),
    eventId: h(RawHeaders.eventId),
  };
}

/** Which dead letters a redrive takes. Times compare with `failed-at`: `since <= failed-at < until`. */
export interface DeadLetterFilter {
  errorCode?: string;
  since?: Date;
  until?: Date;
}

/** True when `info` passes every part of `filter` given; a time bound excludes a dead letter without `failed-at`. */
export function matchesFilter(info: DeadLetterInfo, filter: DeadLetterFilter): boolean {
  if (filter.errorCode !== undefined && info.errorCode !== filter.errorCode) return false;
  if (filter.since === undefined && filter.until === undefined) return true;
  if (info.failedAt === null) return false;
  const at = info.failedAt.getTime();
  if (filter.since !== undefined && at < filter.since.getTime()) return false;
  if (filter.until !== undefined && at >= filter.until.getTime()) return false;
  return true;
}

/** The original headers: the dead letter's minus the six dead-letter headers. */
export function originalHeaders(headers: RecordHeaders): RecordHeaders {
  const out: RecordHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !DEAD_LETTER_HEADER_NAMES.has(name)) out[name] = value;
  }
  return out;
}

/** A record to produce again to its source topic. */
export interface RedriveMessage {
  topic: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeaders;
}

/**
 * The record to produce for a dead letter: its original key, value and headers (ids included, so consumers
 * dedupe a second redrive), plus `redriven-at`. Undefined when the dead letter names no source topic.
 */
export function redriveMessage(record: DeadLetterRecord, now: Date): RedriveMessage | undefined {
  const topic = headerText(record.headers, DeadLetterHeaders.sourceTopic);
  if (!topic) return undefined;
  return {
    topic,
    key: record.key,
    value: record.value,
    headers: { ...originalHeaders(record.headers), [REDRIVEN_AT_HEADER]: now.toISOString() },
  };
}

export interface CodeSummary {
  errorCode: string;
  count: number;
  firstFailedAt: Date | null;
  lastFailedAt: Date | null;
}

export interface DeadLetterSummary {
  total: number;
  firstFailedAt: Date | null;
  lastFailedAt: Date | null;
  /** Most frequent code first. */
  byCode: CodeSummary[];
}

const earlier = (a: Date | null, b: Date | null) => (a === null ? b : b === null || a <= b ? a : b);
const later = (a: Date | null, b: Date | null) => (a === null ? b : b === null || a >= b ? a : b);

/** Counts by `error-code` with the first and last `failed-at` of each and of all. */
export function summarize(infos: Iterable<DeadLetterInfo>): DeadLetterSummary {
  const codes = new Map<string, CodeSummary>();
  let total = 0;
  let first: Date | null = null;
  let last: Date | null = null;
  for (const info of infos) {
    total += 1;
    first = earlier(first, info.failedAt);
    last = later(last, info.failedAt);
    const entry = codes.get(info.errorCode) ?? {
      errorCode: info.errorCode,
      count: 0,
      firstFailedAt: null,
      lastFailedAt: null,
    };
    entry.count += 1;
    entry.firstFailedAt = earlier(entry.firstFailedAt, info.failedAt);
    entry.lastFailedAt = later(entry.lastFailedAt, info.failedAt);
    codes.set(info.errorCode, entry);
  }
  const byCode = [...codes.values()].sort(
    (a, b) => b.count - a.count || a.errorCode.localeCompare(b.errorCode),
  );
  return { total, firstFailedAt: first, lastFailedAt: last, byCode };
}

/** JSON keys whose values are never printed: secrets, signatures and personal data (as the services' logs). */
const SENSITIVE_KEY = /secret|token|signature|password|authorization|vin|latitude|longitude|location/i;

function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, SENSITIVE_KEY.test(k) ? '[redacted]' : redact(v)]),
    );
  }
  return value;
}

/** Cuts `text` to `maxChars`, marking the cut. */
export function truncate(text: string, maxChars: number): string {
  return text.length <= maxChars ? text : `${text.slice(0, Math.max(0, maxChars - 1))}…`;
}

/**
 * A printable preview of a record value: JSON with secrets and personal data redacted, cut to `maxChars`;
 * anything else (Avro) only as its size, since binary says nothing on a terminal.
 */
export function previewValue(value: Buffer | null, maxChars: number): string {
  if (value === null) return '(null)';
  const text = value.toString('utf8');
  try {
    return truncate(JSON.stringify(redact(JSON.parse(text))), maxChars);
  } catch {
    return `(${value.length} bytes, not JSON)`;
  }
}

/** One line of a sample. */
export interface SampleRow {
  partition: number;
  offset: string;
  key: string | null;
  eventId: string | null;
  errorCode: string;
  errorMessage: string;
  failedAt: string | null;
  /** `<topic>[<partition>]@<offset>`. */
  source: string;
  value: string;
}

export function sampleRow(record: DeadLetterRecord, maxValueChars = 120): SampleRow {
  const info = describeDeadLetter(record);
  return {
    partition: record.partition,
    offset: record.offset,
    key: record.key === null ? null : truncate(record.key.toString('utf8'), 60),
    eventId: info.eventId ?? null,
    errorCode: info.errorCode,
    errorMessage: truncate(info.errorMessage, 100),
    failedAt: info.failedAt?.toISOString() ?? null,
    source: `${info.sourceTopic ?? '?'}[${info.sourcePartition ?? '?'}]@${info.sourceOffset ?? '?'}`,
    value: previewValue(record.value, maxValueChars),
  };
}
