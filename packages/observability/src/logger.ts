import pino, { type Logger, type LoggerOptions, type DestinationStream } from 'pino';

export type { Logger };

/**
 * Paths removed from every log line: secrets and signatures, and personal data (VINs, precise locations).
 * pino matches these at the given depth only, so each field is listed at the depths our code logs it.
 */
export const REDACTED_PATHS: readonly string[] = [
  'secret',
  '*.secret',
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers["sc-signature"]',
  'req.headers["svix-signature"]',
  'req.headers["webhook-signature"]',
  'headers["sc-signature"]',
  'headers["svix-signature"]',
  'headers["webhook-signature"]',
  'signature',
  '*.signature',
  'vin',
  '*.vin',
  '*.*.vin',
  'location',
  '*.location',
  '*.*.location',
  'latitude',
  'longitude',
  '*.latitude',
  '*.longitude',
];

export interface LoggerSettings {
  service: string;
  level: string;
  /** For tests: where lines go (default stdout). */
  destination?: DestinationStream;
}

/** The one logger factory: JSON lines with `service`, ISO time, and redaction. */
export function createLogger({ service, level, destination }: LoggerSettings): Logger {
  const options: LoggerOptions = {
    level,
    base: { service },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
    formatters: { level: (label) => ({ level: label }) },
  };
  return destination ? pino(options, destination) : pino(options);
}
