import type { IncomingHttpHeaders } from 'node:http';
import { z } from 'zod';
import { AuthenticationError, ValidationError } from '@ampflow/runtime';
import {
  parsePayload,
  smartcarLegacyVerify,
  smartcarUnknownEvent,
  smartcarVehicleError,
  smartcarVehicleState,
  smartcarVerify,
  telematicaSchemas,
  telematicaUnknownEvent,
  type Provider,
  type TelematicaEventType,
} from '@ampflow/contracts';
import { smartcarChallengeAnswer, verifySmartcarSignature } from './providers/smartcar-signature';
import { svixHmacKey, verifySvixSignature } from './providers/svix-signature';

/** What a verified, schema-checked delivery asks of the ingress. */
export type Intake =
  | { kind: 'challenge'; provider: Provider; answer: { challenge: string } }
  | {
      kind: 'event';
      provider: Provider;
      /** The provider's idempotency key: Smartcar `eventId`, Svix message id. */
      eventId: string;
      eventType: string;
      /** The Kafka key: vehicle id when there is one, else charger or user id. */
      key: string | null;
      /** False for a validly signed type we have no schema for (published anyway, and counted). */
      knownType: boolean;
    };

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Fails on any invalid sequence instead of substituting U+FFFD; keeps a BOM, which JSON.parse then refuses. */
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * The body as text, refusing invalid UTF-8 with 400. Called only once the signature matched the raw bytes,
 * so an unsigned caller learns nothing from the answer (it gets 401 whatever the body). What is published is
 * then both the signed bytes and valid JSON text, so a lenient and a strict consumer read the same event.
 */
function decodeBody(rawBody: Buffer): string {
  try {
    return strictUtf8.decode(rawBody);
  } catch {
    throw new ValidationError('invalid_utf8', 'the body is not valid UTF-8');
  }
}

function parseJsonObject(rawBody: Buffer): Record<string, unknown> {
  const text = decodeBody(rawBody);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ValidationError('malformed_json', 'the body is not valid JSON');
  }
  return requireObject(parsed);
}

function requireObject(parsed: unknown): Record<string, unknown> {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ValidationError('invalid_payload', 'the body must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

/** Each provider schema compiled once by zod (`z.compile`): the same checks, run as generated code. */
const compiledSchemas = new Map<z.ZodType, z.ZodType>();

function compiledOf(schema: z.ZodType): z.ZodType {
  let compiled = compiledSchemas.get(schema);
  if (!compiled) {
    compiled = z.compile(schema);
    compiledSchemas.set(schema, compiled);
  }
  return compiled;
}

/**
 * Checks `body` against `schema`; a failure is a 400 naming the first problems (paths and messages, never
 * values). A valid body is checked by zod's compiled validator, which builds no output: the provider schemas
 * are loose objects without transforms or defaults, so what they would output is the body itself (the fields
 * read from it are the ones checked). Anything the validator refuses goes through the schema's own parse, which
 * gives the verdict and the message.
 */
function check<S extends z.ZodType>(schema: S, body: unknown, what: string): z.infer<S> {
  if (compiledOf(schema).validate(body)) return body as z.infer<S>;
  const result = parsePayload(schema, body, what);
  if (result.ok) return result.value;
  throw new ValidationError('invalid_payload', result.problem);
}

/**
 * Smartcar: the `SC-Signature` header is checked over the raw bytes before anything is decoded. VERIFY is
 * answered only when signed too: answering unsigned challenges would hand out HMACs of chosen text, which
 * are valid signatures for any body an attacker likes.
 */
export function interpretSmartcar(
  managementToken: string,
  rawBody: Buffer,
  headers: IncomingHttpHeaders,
): Intake {
  const signature = header(headers, 'sc-signature');
  if (!signature) throw new AuthenticationError('missing_signature', 'the SC-Signature header is missing');
  if (!verifySmartcarSignature(managementToken, rawBody, signature)) {
    throw new AuthenticationError('invalid_signature', 'the SC-Signature does not match the body');
  }
  const body = parseJsonObject(rawBody);
  const provider = 'smartcar' as const;

  const challenge =
    body.eventType === 'VERIFY'
      ? check(smartcarVerify, body, 'VERIFY').data.challenge
      : body.eventName === 'verify'
        ? check(smartcarLegacyVerify, body, 'verify (v2)').payload.challenge
        : undefined;
  if (challenge !== undefined) {
    return { kind: 'challenge', provider, answer: smartcarChallengeAnswer(managementToken, challenge) };
  }
  if (body.eventType === 'VEHICLE_STATE' || body.eventType === 'VEHICLE_ERROR') {
    const event =
      body.eventType === 'VEHICLE_STATE'
        ? check(smartcarVehicleState, body, 'VEHICLE_STATE')
        : check(smartcarVehicleError, body, 'VEHICLE_ERROR');
    const key = event.vehicleId ?? event.data.vehicle?.id ?? event.data.user?.id ?? null;
    if (!key) throw new ValidationError('invalid_payload', `${event.eventType} names no vehicle and no user`);
    return {
      kind: 'event',
      provider,
      eventId: event.eventId,
      eventType: event.eventType,
      key,
      knownType: true,
    };
  }
  const event = check(smartcarUnknownEvent, body, 'Smartcar event');
  const key = event.vehicleId ?? event.data?.vehicle?.id ?? event.data?.user?.id ?? null;
  return {
    kind: 'event',
    provider,
    eventId: event.eventId,
    eventType: event.eventType,
    key,
    knownType: false,
  };
}

/** Verifies Svix / Standard Webhooks signatures with one or two secrets (during rotation). */
export interface TelematicaVerifier {
  /**
   * Returns normally when a secret's signature matches the exact bytes of `rawBody` and the timestamp is
   * within 5 minutes; throws a 401 {@link AuthenticationError} otherwise.
   */
  verify(rawBody: Buffer, headers: IncomingHttpHeaders): void;
}

export function createTelematicaVerifier(
  secrets: readonly string[],
  nowSeconds: () => number = () => Math.floor(Date.now() / 1000),
): TelematicaVerifier {
  if (secrets.length === 0) throw new Error('at least one Telematica webhook secret is required');
  const keys = secrets.map(svixHmacKey);
  return {
    verify(rawBody, headers) {
      const id = header(headers, 'svix-id') ?? header(headers, 'webhook-id');
      const timestamp = header(headers, 'svix-timestamp') ?? header(headers, 'webhook-timestamp');
      const signature = header(headers, 'svix-signature') ?? header(headers, 'webhook-signature');
      if (!id || !timestamp || !signature) {
        throw new AuthenticationError(
          'missing_signature',
          'the svix-id/-timestamp/-signature headers are missing',
        );
      }
      // Accepts exactly what the svix library's Webhook.verify accepts (providers/svix-signature.ts). A body
      // that is not valid UTF-8 is refused (400) by the strict decode that follows, so what is verified is
      // always byte for byte what is published.
      const verdict = verifySvixSignature(keys, id, timestamp, signature, rawBody, nowSeconds());
      if (verdict === 'stale_timestamp') {
        throw new AuthenticationError(
          'stale_timestamp',
          'the webhook timestamp is invalid or more than 5 minutes from now',
        );
      }
      if (verdict === 'invalid_signature')
        throw new AuthenticationError('invalid_signature', 'no webhook signature matches the body');
    },
  };
}

/** Telematica (through Svix): signature over the raw bytes first, then UTF-8, JSON and the schema by `type`. */
export function interpretTelematica(
  verifier: TelematicaVerifier,
  rawBody: Buffer,
  headers: IncomingHttpHeaders,
): Intake {
  verifier.verify(rawBody, headers);
  const body = parseJsonObject(rawBody);
  const eventId = (header(headers, 'svix-id') ?? header(headers, 'webhook-id'))!;
  const provider = 'telematica' as const;
  const type = typeof body.type === 'string' ? body.type : undefined;
  if (type && Object.hasOwn(telematicaSchemas, type)) {
    const event = check(telematicaSchemas[type as TelematicaEventType], body, type) as {
      vehicleId?: string;
      chargerId?: string;
      user?: string;
    };
    const key = event.vehicleId ?? event.chargerId ?? event.user ?? null;
    return { kind: 'event', provider, eventId, eventType: type, key, knownType: true };
  }
  const event = check(telematicaUnknownEvent, body, 'Telematica event');
  const key = event.vehicleId ?? event.chargerId ?? event.user ?? null;
  return { kind: 'event', provider, eventId, eventType: event.type, key, knownType: false };
}
