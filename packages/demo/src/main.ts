import { join } from 'node:path';
import { ConfigError } from '@ampflow/config';
import { createLogger } from '@ampflow/observability';
import { AppError } from '@ampflow/runtime';
import { readDemoConfig } from './config';
import { DemoExit, cleanUpDemo, runDemo } from './demo';

// The only file that touches `process`: environment, streams, Ctrl-C and the exit code.
const REPO_ROOT = join(__dirname, '..', '..', '..');

async function main(): Promise<number> {
  let config;
  try {
    config = readDemoConfig(process.env, REPO_ROOT);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(
      `${err.message}\nThe secrets come from the environment or from .ampflow/dev-secrets.env, which \`npm start\` writes on its first run.\n`,
    );
    return DemoExit.config;
  }
  // Log lines (kafkajs warnings) go to stderr, so stdout holds only the demo's output.
  const logger = createLogger({ service: 'demo', level: config.LOG_LEVEL, destination: process.stderr });
  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());
  process.once('SIGTERM', () => abort.abort());
  const io = { stdout: process.stdout, logger, signal: abort.signal };
  // `npm run demo -- --cleanup`: remove the demo endpoint the runs keep for the console, run nothing.
  if (process.argv.includes('--cleanup')) return cleanUpDemo(config, io);
  return runDemo(config, io);
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const message =
      err instanceof AppError
        ? `${err.code}: ${err.message}`
        : err instanceof Error
          ? err.message
          : String(err);
    process.stderr.write(`demo failed: ${message}\n`);
    process.exitCode = DemoExit.failed;
  },
);
