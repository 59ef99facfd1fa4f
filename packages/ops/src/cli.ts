import { PROVIDERS, rawTopic } from '@ampflow/contracts';
import { ConfigError } from '@ampflow/config';
import { createKafka } from '@ampflow/kafka';
import { createLogger, type Logger } from '@ampflow/observability';
import { AppError } from '@ampflow/runtime';
import { REDRIVE_GROUP_ID, USAGE, UsageError, parseCommand, type Command } from './args';
import { readOpsConfig, type OpsConfig } from './config';
import { inspectDeadLetters, redriveDeadLetters } from './dlq-commands';
import { renderInspect, renderRedrive, renderReprocess } from './render';
import { bumpDoneGeneration } from './redeliver';
import { reprocessRawTopics } from './reprocess';

/** Exit codes of `npm run ops`. */
export const ExitCode = { ok: 0, failure: 1, usage: 2 } as const;

export interface CliIo {
  env: Readonly<Record<string, string | undefined>>;
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** Defaults to a pino logger on stderr at LOG_LEVEL. */
  logger?: Logger;
}

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

async function execute(command: Exclude<Command, { name: 'help' }>, config: OpsConfig, logger: Logger) {
  const kafka = createKafka({ brokers: config.KAFKA_BROKERS, clientId: 'ampflow-ops', logger });
  const prefixed = (topic: string) => config.KAFKA_TOPIC_PREFIX + topic;
  switch (command.name) {
    case 'dlq-inspect': {
      const report = await inspectDeadLetters(kafka, {
        topic: prefixed(command.topic),
        sample: command.sample,
        groupId: 'ampflow-ops-inspect',
      });
      return command.json ? json(report) : renderInspect(report);
    }
    case 'dlq-redrive': {
      const report = await redriveDeadLetters(kafka, {
        topic: prefixed(command.topic),
        filter: { errorCode: command.errorCode, since: command.since, until: command.until },
        groupId: REDRIVE_GROUP_ID,
        fromBeginning: command.fromBeginning,
        dryRun: command.dryRun,
        logger,
      });
      return command.json ? json(report) : renderRedrive(report);
    }
    case 'reprocess': {
      const report = await reprocessRawTopics(kafka, {
        topics: PROVIDERS.map((p) => prefixed(rawTopic(p))),
        groupId: command.group,
        since: command.since,
        execute: command.execute,
        ...(command.redeliver
          ? { redeliver: () => bumpDoneGeneration(config.REDIS_URL, config.NOTIFIER_REDIS_NAMESPACE) }
          : {}),
      });
      return command.json ? json(report) : renderReprocess(report);
    }
  }
}

/** Runs one command line; resolves with the exit code (0 done, 1 failed, 2 usage). Touches no `process`. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let command: Command;
  let config: OpsConfig;
  try {
    command = parseCommand(argv);
    config = readOpsConfig(io.env);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`error: ${err.message}\n\n${USAGE}`);
      return ExitCode.usage;
    }
    if (err instanceof ConfigError) {
      io.stderr.write(`${err.message}\n`);
      return ExitCode.usage;
    }
    throw err;
  }
  if (command.name === 'help') {
    io.stdout.write(USAGE);
    return ExitCode.ok;
  }
  const logger =
    io.logger ??
    createLogger({
      service: 'ops',
      level: config.LOG_LEVEL,
      destination: { write: (s: string) => io.stderr.write(s) },
    });
  try {
    io.stdout.write(await execute(command, config, logger));
    return ExitCode.ok;
  } catch (err) {
    const code = err instanceof AppError ? `${err.code}: ` : '';
    io.stderr.write(`error: ${code}${err instanceof Error ? err.message : String(err)}\n`);
    logger.debug({ err }, 'command failed');
    return ExitCode.failure;
  }
}
