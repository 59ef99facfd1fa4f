import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { CUSTOMER_EVENT_TYPES } from '@ampflow/contracts';
import { AppError, ValidationError } from '@ampflow/runtime';
import type { EndpointSecrets } from '../delivery/signing';

/** Events for the operator about the notifier itself; delivered only to endpoints that name them. */
export const OPERATIONAL_EVENT_TYPES = [
  'endpoint.disabled',
  'endpoint.recovered',
  'message.attempt.exhausted',
] as const;
export type OperationalEventType = (typeof OPERATIONAL_EVENT_TYPES)[number];

/** Every type an endpoint may subscribe to. */
export const SUBSCRIBABLE_EVENT_TYPES: readonly string[] = [
  ...CUSTOMER_EVENT_TYPES,
  ...OPERATIONAL_EVENT_TYPES,
];

const CUSTOMER_TYPES: ReadonlySet<string> = new Set(CUSTOMER_EVENT_TYPES);
const OPERATIONAL_TYPES: ReadonlySet<string> = new Set(OPERATIONAL_EVENT_TYPES);

export type DisabledReason = 'endpoint_gone' | 'failing' | 'manual';

/** A customer's webhook endpoint, as stored (JSON) in the endpoints topic. */
export interface Endpoint {
  /** `ep_` + 26 random base32 characters. */
  id: string;
  url: string;
  description: string;
  /**
   * Who the endpoint belongs to (e.g. a customer id), for filtering and scoped access; null or absent = none
   * (records written before owners existed have none).
   */
  owner?: string | null;
  /**
   * Subscribed types, customer and operational ({@link OPERATIONAL_EVENT_TYPES}). Empty: every customer type,
   * no operational one.
   */
  eventTypes: string[];
  /** Filters on customer events; empty = no filter. */
  vehicleIds: string[];
  userIds: string[];
  providers: string[];
  /** Most messages per second sent to it; null = unlimited. */
  throttleRate: number | null;
  enabled: boolean;
  disabledReason: DisabledReason | null;
  /** ISO-8601, set while disabled. */
  disabledAt: string | null;
  secrets: EndpointSecrets;
  /** ISO-8601. */
  createdAt: string;
  updatedAt: string;
}

/** What an endpoint is matched against: an event's type and routing fields. */
export interface MatchableEvent {
  type: string;
  routing: { provider: string; vehicleIds: readonly string[]; userId: string | null };
}

/**
 * Whether `endpoint` subscribes to `event`. Type first: listed, or (empty list) any customer type. Operational
 * events are matched by type alone; customer events must also pass every non-empty filter: one of the event's
 * vehicles listed (an event about no vehicle fails a vehicle filter), its user listed, its provider listed.
 * Whether the endpoint is enabled is not considered here: a disabled endpoint's messages are kept.
 */
export function endpointMatches(endpoint: Endpoint, event: MatchableEvent): boolean {
  if (!subscribesTo(endpoint, event.type)) return false;
  if (OPERATIONAL_TYPES.has(event.type)) return true;
  const { routing } = event;
  if (endpoint.vehicleIds.length > 0 && !routing.vehicleIds.some((v) => endpoint.vehicleIds.includes(v)))
    return false;
  if (endpoint.userIds.length > 0 && (routing.userId === null || !endpoint.userIds.includes(routing.userId)))
    return false;
  if (endpoint.providers.length > 0 && !endpoint.providers.includes(routing.provider)) return false;
  return true;
}

/**
 * Whether `endpoint` subscribes to events of `type` (the type part of {@link endpointMatches}: every endpoint
 * it matches for an event of that type is among these).
 */
export function subscribesTo(endpoint: Pick<Endpoint, 'eventTypes'>, type: string): boolean {
  return endpoint.eventTypes.length === 0 ? CUSTOMER_TYPES.has(type) : endpoint.eventTypes.includes(type);
}

/** Signing secret in the Standard Webhooks form: `whsec_` + base64 of 24 to 64 random bytes. */
export const SECRET_PATTERN = /^whsec_([A-Za-z0-9+/]+={0,2})$/;

export function isValidSecret(secret: string): boolean {
  const match = SECRET_PATTERN.exec(secret);
  if (!match) return false;
  const bytes = Buffer.from(match[1]!, 'base64');
  // Canonical base64 only, so the text and the key it stands for are one to one.
  return bytes.length >= 24 && bytes.length <= 64 && bytes.toString('base64') === match[1];
}

/** A new signing secret: `whsec_` + base64 of 32 random bytes (what Svix generates). */
export function generateSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** A new endpoint id: `ep_` + 26 base32 characters (130 random bits). */
export function generateEndpointId(): string {
  const bytes = randomBytes(17);
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < 26) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  return `ep_${out}`;
}

export const ENDPOINT_ID_PATTERN = /^ep_[a-z2-7]{26}$/;

const MAX_LIST = 1000;
const MAX_URL_CHARS = 2048;

const url = z
  .string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') })
  .max(MAX_URL_CHARS, `must be at most ${MAX_URL_CHARS} characters`)
  .refine((text) => {
    try {
      const parsed = new URL(text);
      return (parsed.protocol === 'https:' || parsed.protocol === 'http:') && parsed.hostname !== '';
    } catch {
      return false;
    }
  }, 'must be an http(s) URL');

const stringList = (what: string) =>
  z
    .array(
      z
        .string()
        .min(1, `each ${what} must be non-empty`)
        .max(200, `each ${what} must be at most 200 characters`),
    )
    .max(MAX_LIST, `at most ${MAX_LIST} entries`)
    .transform((items) => [...new Set(items)]);

const eventTypes = z
  .array(
    z.string().refine((type) => SUBSCRIBABLE_EVENT_TYPES.includes(type), {
      error: (issue) => `unknown event type ${JSON.stringify(issue.input)}`,
    }),
  )
  .max(MAX_LIST, `at most ${MAX_LIST} entries`)
  .transform((items) => [...new Set(items)]);

const throttleRate = z
  .number()
  .int('must be an integer')
  .positive('must be positive')
  .max(10_000, 'must be at most 10000')
  .nullable();

const description = z.string().max(500, 'must be at most 500 characters');

/** An endpoint's `owner` label: 1 to 64 characters of `A-Z a-z 0-9 . _ : -`. */
export const OWNER_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;
export const ownerSchema = z
  .string({ error: 'must be a string' })
  .regex(OWNER_PATTERN, 'must be 1 to 64 characters of A-Z a-z 0-9 . _ : -');

/** The body of `POST /v1/endpoints`. Unknown fields are refused, so a typo is not silently ignored. */
export const createEndpointSchema = z.strictObject({
  url,
  description: description.default(''),
  owner: ownerSchema.nullable().default(null),
  eventTypes: eventTypes.default([]),
  vehicleIds: stringList('vehicle id').default([]),
  userIds: stringList('user id').default([]),
  providers: stringList('provider').default([]),
  throttleRate: throttleRate.default(null),
  enabled: z.boolean().default(true),
  secret: z
    .string()
    .refine(isValidSecret, 'must be whsec_ followed by the base64 of 24 to 64 bytes')
    .optional(),
});

/** The body of `PATCH /v1/endpoints/:id`: any subset; the secret changes only by rotation. */
export const updateEndpointSchema = z.strictObject({
  url: url.optional(),
  description: description.optional(),
  owner: ownerSchema.nullable().optional(),
  eventTypes: eventTypes.optional(),
  vehicleIds: stringList('vehicle id').optional(),
  userIds: stringList('user id').optional(),
  providers: stringList('provider').optional(),
  throttleRate: throttleRate.optional(),
  enabled: z.boolean().optional(),
});

/** What callers pass (defaults not yet applied). */
export type CreateEndpointInput = z.input<typeof createEndpointSchema>;
export type UpdateEndpointInput = z.input<typeof updateEndpointSchema>;
export type ValidCreateEndpoint = z.output<typeof createEndpointSchema>;
export type ValidUpdateEndpoint = z.output<typeof updateEndpointSchema>;

/** One line naming each bad field: `url: must be an http(s) URL; eventTypes.1: unknown event type "x"`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.map(String).join('.');
      if (issue.code === 'unrecognized_keys') return `unknown field(s): ${issue.keys.join(', ')}`;
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join('; ');
}

/** Parses with `schema` or throws a 400 {@link ValidationError} (`code`) whose message names each bad field. */
export function parseOrThrow<S extends z.ZodType>(
  schema: S,
  input: unknown,
  code = 'invalid_request',
): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) throw new ValidationError(code, describeIssues(result.error));
  return result.data;
}

export class EndpointNotFoundError extends AppError {
  constructor(id: string) {
    super('endpoint_not_found', `no endpoint ${id}`, false, 404);
  }
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** A new endpoint from a validated create body. */
export function newEndpoint(input: ValidCreateEndpoint, id: string, nowMs: number): Endpoint {
  const now = iso(nowMs);
  return {
    id,
    url: input.url,
    description: input.description,
    owner: input.owner,
    eventTypes: input.eventTypes,
    vehicleIds: input.vehicleIds,
    userIds: input.userIds,
    providers: input.providers,
    throttleRate: input.throttleRate,
    enabled: input.enabled,
    disabledReason: input.enabled ? null : 'manual',
    disabledAt: input.enabled ? null : now,
    secrets: { current: input.secret ?? generateSecret(), previous: null },
    createdAt: now,
    updatedAt: now,
  };
}

/**
 * `endpoint` with a validated patch applied. `enabled: true` clears the disabled reason and time;
 * `enabled: false` disables it for reason `manual`, unless it already was disabled (its first reason is kept).
 */
export function applyPatch(endpoint: Endpoint, patch: ValidUpdateEndpoint, nowMs: number): Endpoint {
  const { enabled, ...fields } = patch;
  const next: Endpoint = { ...endpoint, updatedAt: iso(nowMs) };
  for (const [key, value] of Object.entries(fields)) {
    if (value !== undefined) (next as unknown as Record<string, unknown>)[key] = value;
  }
  if (enabled === true && !endpoint.enabled) {
    next.enabled = true;
    next.disabledReason = null;
    next.disabledAt = null;
  } else if (enabled === false && endpoint.enabled) {
    next.enabled = false;
    next.disabledReason = 'manual';
    next.disabledAt = iso(nowMs);
  }
  return next;
}

/** `endpoint` with a new current secret; the old one becomes `previous` (it keeps signing for the overlap). */
export function withRotatedSecret(endpoint: Endpoint, newSecret: string, nowMs: number): Endpoint {
  return {
    ...endpoint,
    secrets: { current: newSecret, previous: { secret: endpoint.secrets.current, rotatedAt: nowMs } },
    updatedAt: iso(nowMs),
  };
}

/** `endpoint` disabled for `reason` at `nowMs`. */
export function withDisabled(endpoint: Endpoint, reason: DisabledReason, nowMs: number): Endpoint {
  return {
    ...endpoint,
    enabled: false,
    disabledReason: reason,
    disabledAt: iso(nowMs),
    updatedAt: iso(nowMs),
  };
}

/** What the admin API shows of an endpoint: everything but its secrets. */
export interface EndpointView {
  id: string;
  url: string;
  description: string;
  owner: string | null;
  eventTypes: string[];
  vehicleIds: string[];
  userIds: string[];
  providers: string[];
  throttleRate: number | null;
  enabled: boolean;
  disabledReason: DisabledReason | null;
  disabledAt: string | null;
  createdAt: string;
  updatedAt: string;
}

/** Field by field (not a spread minus `secrets`), so a field added later is not shown by accident. */
export function publicView(endpoint: Endpoint): EndpointView {
  return {
    id: endpoint.id,
    url: endpoint.url,
    description: endpoint.description,
    owner: endpoint.owner ?? null,
    eventTypes: [...endpoint.eventTypes],
    vehicleIds: [...endpoint.vehicleIds],
    userIds: [...endpoint.userIds],
    providers: [...endpoint.providers],
    throttleRate: endpoint.throttleRate,
    enabled: endpoint.enabled,
    disabledReason: endpoint.disabledReason,
    disabledAt: endpoint.disabledAt,
    createdAt: endpoint.createdAt,
    updatedAt: endpoint.updatedAt,
  };
}

const isoString = z.string().refine((text) => !Number.isNaN(Date.parse(text)), 'must be an ISO-8601 time');

/** An endpoint as read back from the topic with its secrets in plain text (after `endpoint-codec` opened them). */
const storedEndpointSchema = z.object({
  id: z.string().regex(ENDPOINT_ID_PATTERN),
  url: z.string(),
  description: z.string(),
  // Records written before owners existed have none.
  owner: z.string().nullable().default(null),
  eventTypes: z.array(z.string()),
  vehicleIds: z.array(z.string()),
  userIds: z.array(z.string()),
  providers: z.array(z.string()),
  throttleRate: z.number().nullable(),
  enabled: z.boolean(),
  disabledReason: z.enum(['endpoint_gone', 'failing', 'manual']).nullable(),
  disabledAt: isoString.nullable(),
  secrets: z.object({
    current: z.string().refine(isValidSecret),
    previous: z
      .object({ secret: z.string().refine(isValidSecret), rotatedAt: z.number() })
      .nullable()
      .optional(),
  }),
  createdAt: isoString,
  updatedAt: isoString,
});

/** Checks a stored endpoint (secrets in plain text); throws on anything that is not a whole endpoint. */
export function parseStoredEndpoint(value: unknown): Endpoint {
  return storedEndpointSchema.parse(value) as Endpoint;
}
