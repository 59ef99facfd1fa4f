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
 * What a service may call when it is stuck in a state it cannot leave (a consumer kafkajs gave up on, a
 * producer with no acknowledgement for too long): the process stops and exits 1 so that a supervisor
 * (`npm start`, Kubernetes, systemd) starts a fresh one.
 */
export type FailService = (reason: string, error?: unknown) => void;

/**
 * Runs a service for the life of the process: signal handlers are registered before anything connects,
 * SIGTERM/SIGINT stop it (exit 0), a failure to start or stop exits 1, `fail` stops it and exits 1, and a
 * stop that outlasts `forceStopAfterMs` exits 1 as well. A second signal during the stop exits at once.
 * Returns the `fail` callback (also handed to `createService` by {@link bootstrap}).
 */
export function runService(
  service: Service | ((fail: FailService) => Service),
  deps: { logger: Logger; process: ProcessLike; forceStopAfterMs?: number },
): FailService {
  const { logger, process } = deps;
  const forceStopAfterMs = deps.forceStopAfterMs ?? 25_000;
  let stopping = false;
  /** Set once the service is built; `fail` may be called by the factory's callbacks before that. */
  const current: { service?: Service } = {};

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
    (current.service ? current.service.stop() : Promise.resolve()).then(
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

  const fail: FailService = (reason, error) => {
    if (stopping) return;
    logger.error({ err: error, reason }, 'service failed: stopping so that a supervisor restarts it');
    stop(reason, 1);
  };

  process.on('SIGTERM', () => stop('SIGTERM', 0));
  process.on('SIGINT', () => stop('SIGINT', 0));

  current.service = typeof service === 'function' ? service(fail) : service;
  current.service.start().then(
    () => logger.info('started'),
    (err: unknown) => {
      // A stop requested while starting makes the start fail; that stop is already under way.
      if (stopping) {
        logger.info({ err }, 'start interrupted by the stop');
        return;
      }
      logger.error({ err }, 'start failed');
      stop('start failed', 1);
    },
  );
  return fail;
}

export interface BootstrapOptions<C> {
  service: string;
  /** The service's config reader (its `config.ts`); throws a ConfigError naming every bad variable. */
  readConfig: (env: NodeJS.ProcessEnv) => C;
  logLevel: (config: C) => string;
  /** Builds the app; `fail` is for states the service cannot leave by itself (see {@link FailService}). */
  createService: (config: C, logger: Logger, fail: FailService) => Service;
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
  runService((fail) => options.createService(config, logger, fail), { logger, process: proc });
}
