import type { Logger } from '@ampflow/observability';

/** What `main.ts` runs: an app built by its factory, started once and stopped once. */
export interface Service {
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface ProcessLike {
  on(signal: 'SIGTERM' | 'SIGINT', listener: () => void): unknown;
  exit(code: number): never;
}

/**
 * Runs a service for the life of the process: signal handlers are registered before anything connects,
 * SIGTERM/SIGINT stop it (exit 0), a failure to start or stop exits 1, and a stop that outlasts
 * `forceStopAfterMs` exits 1 as well. A second signal during the stop exits at once.
 */
export function runService(
  service: Service,
  deps: { logger: Logger; process: ProcessLike; forceStopAfterMs?: number },
): void {
  const { logger, process } = deps;
  const forceStopAfterMs = deps.forceStopAfterMs ?? 25_000;
  let stopping = false;

  const stop = (reason: string, exitCode: number) => {
    if (stopping) {
      logger.warn({ reason }, 'second stop request: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ reason }, 'stopping');
    const force = setTimeout(() => {
      logger.error({ forceStopAfterMs }, 'stop did not finish in time: exiting');
      process.exit(1);
    }, forceStopAfterMs);
    force.unref();
    service.stop().then(
      () => {
        logger.info('stopped');
        process.exit(exitCode);
      },
      (err: unknown) => {
        logger.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  };

  process.on('SIGTERM', () => stop('SIGTERM', 0));
  process.on('SIGINT', () => stop('SIGINT', 0));

  service.start().then(
    () => logger.info('started'),
    (err: unknown) => {
      logger.error({ err }, 'start failed');
      stop('start failed', 1);
    },
  );
}

export interface BootstrapOptions<C> {
  service: string;
  /** The service's config reader (its `config.ts`); throws a ConfigError naming every bad variable. */
  readConfig: (env: NodeJS.ProcessEnv) => C;
  logLevel: (config: C) => string;
  createService: (config: C, logger: Logger) => Service;
}

/**
 * The body of every `main.ts`: parse config (exit 1 naming the bad variables), build the logger and the
 * app, run it until a signal. The only code that touches `process`.
 */
export function bootstrap<C>(
  options: BootstrapOptions<C>,
  proc: NodeJS.Process,
  createLogger: (settings: { service: string; level: string }) => Logger,
): void {
  let config: C;
  try {
    config = options.readConfig(proc.env);
  } catch (err) {
    proc.stderr.write(`${options.service}: ${(err as Error).message}\n`);
    proc.exit(1);
  }
  const logger = createLogger({ service: options.service, level: options.logLevel(config) });
  proc.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection'));
  runService(options.createService(config, logger), { logger, process: proc });
}
