import type { CanonicalTopic, ChargingSession } from '@ampflow/contracts';
import type { Scenario } from './scenario';

/** What the ingress answered to one delivery. */
export interface IngressAnswer {
  step: number;
  httpStatus: number;
  /** `accepted` / `duplicate` from a 200 body, else the error code (or `unreachable`). */
  status: string;
}

/** A canonical record the demo read, decoded. */
export interface SeenRecord {
  topic: CanonicalTopic;
  key: string;
  eventId: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  value: any;
}

/** A customer webhook the sink verified (the first delivery of each `webhook-id`). */
export interface VerifiedWebhook {
  id: string;
  type: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  data: any;
  timestamp: string;
}

export interface Observations {
  answers: readonly IngressAnswer[];
  records: readonly SeenRecord[];
  sessions: readonly ChargingSession[];
  webhooks: readonly VerifiedWebhook[];
  /** Requests to the sink whose signature did not verify. */
  unverified: number;
}

export interface Progress {
  records: { seen: number; expected: number };
  sessions: { seen: number; expected: number };
  webhooks: { seen: number; expected: number };
  /** Every expected record, session change and webhook arrived. */
  complete: boolean;
  /** What is missing or wrong, one line each; empty when the demo succeeded. */
  problems: string[];
}

const sessionKey = (vehicleId: string, version: number) => `${vehicleId}#${version}`;

/**
 * Compares what was observed with what the scenario expects. A count is "seen" only for what was expected
 * (records of other producers on the same topics never count); duplicates and unexpected extras are problems.
 */
export function assess(scenario: Scenario, seen: Observations): Progress {
  const problems: string[] = [];
  const { expected } = scenario;

  for (const delivery of scenario.deliveries) {
    const answer = seen.answers.find((a) => a.step === delivery.step);
    if (!answer) problems.push(`step ${delivery.step} (${delivery.label}) was not posted`);
    else if (answer.httpStatus !== 200 || answer.status !== delivery.outcome)
      problems.push(
        `step ${delivery.step} (${delivery.provider} ${delivery.label}): ingress answered ${answer.httpStatus} ${answer.status}, expected 200 ${delivery.outcome}`,
      );
  }

  const recordCounts = new Map<string, number>();
  for (const r of seen.records) recordCounts.set(r.eventId, (recordCounts.get(r.eventId) ?? 0) + 1);
  let recordsSeen = 0;
  for (const record of expected.records) {
    const count = recordCounts.get(record.eventId) ?? 0;
    if (count > 0) recordsSeen += 1;
    if (count === 0) problems.push(`missing record ${record.eventId} (${record.label}) on ${record.topic}`);
    if (count > 1) problems.push(`record ${record.eventId} (${record.label}) was published ${count} times`);
  }
  const expectedIds = new Set(expected.records.map((r) => r.eventId));
  for (const r of seen.records) {
    if (!expectedIds.has(r.eventId)) problems.push(`unexpected record ${r.eventId} on ${r.topic}`);
  }

  const sessionsByKey = new Map<string, ChargingSession>();
  for (const s of seen.sessions) sessionsByKey.set(sessionKey(s.vehicleId, s.version), s);
  let sessionsSeen = 0;
  for (const change of expected.sessions) {
    const s = sessionsByKey.get(sessionKey(change.vehicleId, change.version));
    const what = `${change.vehicleId} session change ${change.version} (${change.change})`;
    if (!s) {
      problems.push(`missing ${what}`);
      continue;
    }
    sessionsSeen += 1;
    if (s.change !== change.change || s.endReason !== change.endReason)
      problems.push(`${what}: got ${s.change} ${s.endReason ?? ''}`.trimEnd());
    if (s.socStartPercent !== change.socStartPercent || s.socEndPercent !== change.socEndPercent)
      problems.push(
        `${what}: SOC ${s.socStartPercent}→${s.socEndPercent}%, expected ${change.socStartPercent}→${change.socEndPercent}%`,
      );
  }
  const expectedSessionKeys = new Set(expected.sessions.map((c) => sessionKey(c.vehicleId, c.version)));
  for (const s of seen.sessions) {
    if (!expectedSessionKeys.has(sessionKey(s.vehicleId, s.version)))
      problems.push(`unexpected session change ${s.vehicleId} version ${s.version} (${s.change})`);
  }

  const webhookCounts = new Map<string, number>();
  for (const w of seen.webhooks) {
    const key = `${w.type}|${webhookVehicle(w)}`;
    webhookCounts.set(key, (webhookCounts.get(key) ?? 0) + 1);
  }
  let webhooksSeen = 0;
  let webhooksExpected = 0;
  for (const e of expected.webhooks) {
    const count = webhookCounts.get(`${e.type}|${e.vehicleId}`) ?? 0;
    webhooksExpected += e.count;
    webhooksSeen += Math.min(count, e.count);
    if (count < e.count)
      problems.push(`${e.count - count} of ${e.count} ${e.type} webhook(s) for ${e.vehicleId} missing`);
    if (count > e.count)
      problems.push(`${count - e.count} unexpected ${e.type} webhook(s) for ${e.vehicleId}`);
  }
  const expectedTypes = new Set(expected.webhooks.map((e) => `${e.type}|${e.vehicleId}`));
  for (const [key, count] of webhookCounts) {
    if (!expectedTypes.has(key)) problems.push(`${count} unexpected webhook(s) ${key.replace('|', ' for ')}`);
  }
  if (seen.unverified > 0)
    problems.push(`${seen.unverified} request(s) to the sink did not verify with the endpoint's secret`);

  const complete =
    recordsSeen === expected.records.length &&
    sessionsSeen === expected.sessions.length &&
    webhooksSeen === webhooksExpected;
  return {
    records: { seen: recordsSeen, expected: expected.records.length },
    sessions: { seen: sessionsSeen, expected: expected.sessions.length },
    webhooks: { seen: webhooksSeen, expected: webhooksExpected },
    complete,
    problems,
  };
}

/** The vehicle a customer webhook is about: `data.vehicleId`, else its first device's (device links). */
export function webhookVehicle(webhook: Pick<VerifiedWebhook, 'data'>): string | null {
  const data = webhook.data ?? {};
  if (typeof data.vehicleId === 'string') return data.vehicleId;
  const [device] = Array.isArray(data.devices) ? data.devices : [];
  return typeof device?.vehicleId === 'string' ? device.vehicleId : null;
}

/** The one-line progress: `records 12/18 · sessions 5/8 · webhooks verified 20/30 · 12 s`. */
export function progressLine(progress: Progress, elapsedMs: number): string {
  const { records, sessions, webhooks } = progress;
  return (
    `records ${records.seen}/${records.expected} · sessions ${sessions.seen}/${sessions.expected} · ` +
    `webhooks verified ${webhooks.seen}/${webhooks.expected} · ${Math.floor(elapsedMs / 1000)} s`
  );
}
