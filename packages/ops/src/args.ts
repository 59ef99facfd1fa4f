import { parseArgs } from 'node:util';
import { ValidationError } from '@ampflow/runtime';

export const USAGE = `Usage: npm run ops -- <command> [options]

Commands:
  dlq inspect <topic.dlq> [--sample N] [--json]
      Counts by error-code, first and last failed-at, and a sample of N dead letters (default 5).
  dlq redrive <topic.dlq> [--error-code C] [--since ISO] [--until ISO] [--from-beginning] [--dry-run] [--json]
      Produces each matching dead letter's original key, value and headers to its source-topic, with a
      redriven-at header. Only dead letters that arrived since the last redrive of this topic are read
      (consumer group ampflow-ops-redrive), unless --from-beginning. Times compare with failed-at:
      since <= failed-at < until. --dry-run counts without producing or moving the position.
  reprocess --since ISO [--group ID] [--execute] [--redeliver] [--json]
      Moves the normalizer group's committed offsets on the raw topics back to the first record at or after
      --since, so a fixed mapper normalizes them again. Refuses while the group has members: stop the
      normalizer first. Without --execute it prints the plan only. --group defaults to ampflow-normalizer.
      Customer webhooks: by default the notifier does not send again what it delivered in the last 48 hours
      (its done marks; older records are sent again). --redeliver (with --execute) bumps the notifier's
      done-mark generation in Redis (REDIS_URL, NOTIFIER_REDIS_NAMESPACE), so every reprocessed record is
      delivered again, with its original webhook-id.

Environment: KAFKA_BROKERS (default localhost:9092), KAFKA_TOPIC_PREFIX (put in front of the topic names
given and of the raw topics), REDIS_URL (default redis://localhost:6379) and NOTIFIER_REDIS_NAMESPACE
(default ampflow:notifier) for --redeliver, LOG_LEVEL (default warn; logs go to stderr).

Exit codes: 0 done, 1 failed (Kafka, a refused reprocess), 2 usage error.
`;

/** The normalizer's consumer group: NORMALIZER_GROUP_ID's default in services/normalizer/src/config.ts
 * (duplicated here: packages never import services). */
export const DEFAULT_NORMALIZER_GROUP_ID = 'ampflow-normalizer';

/** Where `dlq redrive` remembers how far it got, per dead-letter topic (committed offsets). */
export const REDRIVE_GROUP_ID = 'ampflow-ops-redrive';

export type Command =
  | { name: 'help' }
  | { name: 'dlq-inspect'; topic: string; sample: number; json: boolean }
  | {
      name: 'dlq-redrive';
      topic: string;
      errorCode?: string;
      since?: Date;
      until?: Date;
      fromBeginning: boolean;
      dryRun: boolean;
      json: boolean;
    }
  | { name: 'reprocess'; since: Date; group: string; execute: boolean; redeliver: boolean; json: boolean };

/** A command line that does not make sense; exit code 2 with the usage. */
export class UsageError extends ValidationError {
  constructor(message: string) {
    super('usage', message);
  }
}

function isoDate(option: string, value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  // A bare number or a date without a zone would be read in whatever zone the shell runs in: ask for ISO 8601.
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2}))?$/.test(value)) {
    throw new UsageError(`${option} expects an ISO 8601 time such as 2026-05-01T00:00:00Z, got "${value}"`);
  }
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw new UsageError(`${option}: "${value}" is not a valid time`);
  return date;
}

const options = {
  help: { type: 'boolean', short: 'h' },
  json: { type: 'boolean' },
  sample: { type: 'string' },
  'error-code': { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  'from-beginning': { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  group: { type: 'string' },
  execute: { type: 'boolean' },
  redeliver: { type: 'boolean' },
} as const;

type OptionName = keyof typeof options;

const ALLOWED: Record<Exclude<Command['name'], 'help'>, readonly OptionName[]> = {
  'dlq-inspect': ['json', 'sample'],
  'dlq-redrive': ['json', 'error-code', 'since', 'until', 'from-beginning', 'dry-run'],
  reprocess: ['json', 'since', 'group', 'execute', 'redeliver'],
};

/** Parses the arguments after `npm run ops --`; throws {@link UsageError}. */
export function parseCommand(argv: readonly string[]): Command {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length === 0 || positionals[0] === 'help') return { name: 'help' };

  const [group, action, ...rest] = positionals;
  let name: Exclude<Command['name'], 'help'>;
  let operands: string[];
  if (group === 'dlq' && (action === 'inspect' || action === 'redrive')) {
    name = action === 'inspect' ? 'dlq-inspect' : 'dlq-redrive';
    operands = rest;
    if (operands.length !== 1) throw new UsageError(`dlq ${action} takes one dead-letter topic`);
  } else if (group === 'reprocess') {
    name = 'reprocess';
    operands = action === undefined ? [] : [action, ...rest];
    if (operands.length > 0) throw new UsageError(`reprocess takes no operands, got "${operands.join(' ')}"`);
  } else {
    throw new UsageError(`unknown command "${positionals.join(' ')}"`);
  }
  const given = (Object.keys(values) as OptionName[]).filter((k) => values[k] !== undefined);
  const misplaced = given.filter((k) => !ALLOWED[name].includes(k));
  if (misplaced.length > 0) {
    throw new UsageError(
      `${misplaced.map((k) => `--${k}`).join(', ')} not allowed with ${name.replace('-', ' ')}`,
    );
  }
  const json = values.json === true;

  switch (name) {
    case 'dlq-inspect': {
      const sample = values.sample === undefined ? 5 : Number(values.sample);
      if (!Number.isInteger(sample) || sample < 0)
        throw new UsageError('--sample expects a whole number >= 0');
      return { name, topic: operands[0]!, sample, json };
    }
    case 'dlq-redrive': {
      const since = isoDate('--since', values.since);
      const until = isoDate('--until', values.until);
      if (since && until && since >= until) throw new UsageError('--since must be before --until');
      if (values['error-code'] === '') throw new UsageError('--error-code must not be empty');
      return {
        name,
        topic: operands[0]!,
        ...(values['error-code'] === undefined ? {} : { errorCode: values['error-code'] }),
        ...(since ? { since } : {}),
        ...(until ? { until } : {}),
        fromBeginning: values['from-beginning'] === true,
        dryRun: values['dry-run'] === true,
        json,
      };
    }
    case 'reprocess': {
      const since = isoDate('--since', values.since);
      if (!since) throw new UsageError('reprocess needs --since');
      if (values.group === '') throw new UsageError('--group must not be empty');
      return {
        name,
        since,
        group: values.group ?? DEFAULT_NORMALIZER_GROUP_ID,
        execute: values.execute === true,
        redeliver: values.redeliver === true,
        json,
      };
    }
  }
}
