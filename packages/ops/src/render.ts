import type { InspectReport, RedriveReport } from './dlq-commands';
import { NOTIFIER_DONE_MARK_TTL_HOURS } from './redeliver';
import type { ReprocessReport } from './reprocess';
import { formatTable } from './table';

const iso = (d: Date | null) => d?.toISOString() ?? null;

/** `dlq inspect` as text: counts by code, then the sample. */
export function renderInspect(report: InspectReport): string {
  const { summary } = report;
  if (summary.total === 0) return `${report.topic}: no dead letters\n`;
  const lines = [
    `${report.topic}: ${summary.total} dead letter(s), failed ${iso(summary.firstFailedAt) ?? '?'} .. ${iso(summary.lastFailedAt) ?? '?'}`,
    '',
    formatTable(
      ['error-code', 'count', 'first failed-at', 'last failed-at'],
      summary.byCode.map((c) => [c.errorCode, c.count, iso(c.firstFailedAt), iso(c.lastFailedAt)]),
    ),
  ];
  if (report.sample.length > 0) {
    lines.push(
      '',
      `Sample (first ${report.sample.length}; values cut, secrets and personal data redacted):`,
      formatTable(
        ['partition@offset', 'key', 'error-code', 'source', 'failed-at', 'error-message'],
        report.sample.map((s) => [
          `${s.partition}@${s.offset}`,
          s.key,
          s.errorCode,
          s.source,
          s.failedAt,
          s.errorMessage,
        ]),
      ),
      '',
      ...report.sample.map((s) => `${s.partition}@${s.offset} event-id=${s.eventId ?? '-'} value=${s.value}`),
    );
  }
  return `${lines.join('\n')}\n`;
}

/** `dlq redrive` as text: the counts and where the records went. */
export function renderRedrive(report: RedriveReport): string {
  const lines = [
    `${report.topic}: ${report.dryRun ? 'dry run, nothing produced and the position not moved' : 'redrive done'}`,
    formatTable(
      ['read', 'matched', 'redriven', 'skipped'],
      [[report.read, report.matched, report.redriven, report.skipped]],
    ),
  ];
  const targets = Object.entries(report.byTarget);
  if (targets.length > 0) {
    lines.push(
      '',
      formatTable(
        ['source topic', 'matched'],
        targets.map(([topic, n]) => [topic, n]),
      ),
    );
  }
  if (report.skipped > 0 && !report.dryRun) {
    lines.push('', 'Skipped dead letters are behind the position now; --from-beginning reads them again.');
  }
  return `${lines.join('\n')}\n`;
}

/** `reprocess` as text: the plan per partition and what was done. */
export function renderReprocess(report: ReprocessReport): string {
  const lines = [
    `group ${report.groupId} (${report.groupState}), --since ${report.since}`,
    formatTable(
      ['topic', 'partition', 'current', 'new', 'to reprocess', 'note'],
      report.plan.map((r) => [r.topic, r.partition, r.current, r.next, r.toReprocess, r.reason]),
    ),
    '',
    report.executed
      ? `Offsets moved: the normalizer reads ${report.toReprocess} record(s) again once started.`
      : `Plan only: ${report.toReprocess} record(s) to reprocess. Run again with --execute to move the offsets.`,
    customerWebhooksLine(report),
  ];
  return `${lines.join('\n')}\n`;
}

function customerWebhooksLine(report: ReprocessReport): string {
  if (report.customerWebhooks === 'skip_delivered') {
    return (
      `Customer webhooks: the notifier does not send again what it delivered in the last ` +
      `${NOTIFIER_DONE_MARK_TTL_HOURS} hours (its done marks); older records are sent again, with their ` +
      'original webhook-id. Add --redeliver to send all of them again.'
    );
  }
  return report.executed
    ? `Customer webhooks: sent again for every reprocessed record, with their original webhook-id ` +
        `(notifier done-mark generation now ${report.doneGeneration}).`
    : 'Customer webhooks: with --execute, the notifier done-mark generation is bumped and every reprocessed ' +
        'record is sent again, with its original webhook-id.';
}
