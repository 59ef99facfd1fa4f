import type { z } from 'zod';
import { telematicaSchemas } from './telematica-schemas';

/** Every provider event type with a schema (metric labels use these; anything else is `unknown`). */
export const KNOWN_PROVIDER_EVENT_TYPES: ReadonlySet<string> = new Set([
  'VEHICLE_STATE',
  'VEHICLE_ERROR',
  'VERIFY',
  ...Object.keys(telematicaSchemas),
]);

/**
 * Parses `body` with `schema`; on failure returns a message naming the first problems by path, never the
 * values (payloads carry VINs and locations).
 */
export function parsePayload<S extends z.ZodType>(
  schema: S,
  body: unknown,
  what: string,
): { ok: true; value: z.infer<S> } | { ok: false; problem: string } {
  const result = schema.safeParse(body);
  if (result.success) return { ok: true, value: result.data };
  const problems = result.error.issues
    .slice(0, 3)
    .map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`)
    .join('; ');
  return { ok: false, problem: `${what} does not match its schema: ${problems}` };
}
