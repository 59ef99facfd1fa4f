/**
 * Fields the console never shows, at any depth of a record: the same personal data the platform keeps out of
 * its logs (VINs, precise positions; packages/observability REDACTED_PATHS) and anything named like a secret.
 * The operator sees every other field of the record as it was written.
 */
const REDACTED_KEYS = new Set([
  'vin',
  'latitude',
  'longitude',
  'secret',
  'token',
  'authorization',
  'signature',
]);

export const REDACTED = '[redacted]';

/** A deep copy of `value` with the redacted keys' values replaced by {@link REDACTED}. */
export function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    out[key] = REDACTED_KEYS.has(key.toLowerCase()) && inner !== null ? REDACTED : redact(inner);
  }
  return out;
}
