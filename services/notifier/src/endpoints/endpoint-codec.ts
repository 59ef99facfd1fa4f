import { z } from 'zod';
import { parseStoredEndpoint, type Endpoint } from './model';
import type { SecretBox } from './secret-box';

/**
 * How an endpoint is written to its compacted topic: JSON of every field but `secrets`, which is replaced by
 * `sealedSecrets`, the AES-256-GCM box (key id, iv, ciphertext, tag) of the JSON of `secrets` with the
 * endpoint id as additional authenticated data. A reader of the topic without NOTIFIER_SECRETS_KEY sees
 * where webhooks go, never how they are signed; a box copied onto another endpoint does not open.
 */
export interface EndpointCodec {
  /** Always seals with the current key. */
  encode(endpoint: Endpoint): Buffer;
  /**
   * Opens a sealed record with the key its id names (current or previous), and still reads a record written
   * before encryption at rest (`secrets` in plain text). Throws on a record that is not a whole endpoint or
   * whose box does not open; the table skips it and logs why (key ids only).
   */
  decode(value: Buffer): Endpoint;
  /**
   * Ids whose latest record read is not sealed with the current key (plain text, or the previous key): the
   * store rewrites them at start. A live view: each record decoded updates it.
   */
  staleIds(): ReadonlySet<string>;
  /**
   * Endpoints whose latest record `decode` refused, plus records refused whose id could not be told. The table
   * then keeps the key's older value, which must not be written back over the newer record: while this is not
   * 0 the store rewrites nothing.
   */
  undecodableRecords(): number;
}

const sealedBoxSchema = z.object({
  kid: z.string(),
  iv: z.string(),
  ciphertext: z.string(),
  tag: z.string(),
});

const recordSchema = z.looseObject({
  id: z.string(),
  sealedSecrets: sealedBoxSchema.optional(),
  secrets: z.unknown().optional(),
});

/** The `id` of a record that may not be a whole endpoint, if it has one. */
function idOf(value: Buffer): string | undefined {
  try {
    const id: unknown = (JSON.parse(value.toString('utf8')) as { id?: unknown } | null)?.id;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}

export function createEndpointCodec(box: SecretBox): EndpointCodec {
  const stale = new Set<string>();
  /** Ids whose latest record was refused; a later record that decodes clears its id. */
  const unreadable = new Set<string>();
  let unreadableWithoutId = 0;

  function decode(value: Buffer): Endpoint {
    const {
      sealedSecrets,
      secrets: plainSecrets,
      ...fields
    } = recordSchema.parse(JSON.parse(value.toString('utf8')));
    let secrets: unknown;
    let current: boolean;
    if (sealedSecrets) {
      const opened = box.open(sealedSecrets, fields.id);
      secrets = JSON.parse(opened.plaintext);
      // A record holding both (nothing writes one) is rewritten too, without the plain text.
      current = opened.current && plainSecrets === undefined;
    } else {
      // Written before encryption at rest: read as it is, sealed when the store rewrites it at start.
      secrets = plainSecrets;
      current = false;
    }
    const endpoint = parseStoredEndpoint({ ...fields, secrets });
    unreadable.delete(endpoint.id);
    if (current) stale.delete(endpoint.id);
    else stale.add(endpoint.id);
    return endpoint;
  }

  return {
    encode(endpoint) {
      const { secrets, ...fields } = endpoint;
      const sealedSecrets = box.seal(JSON.stringify(secrets), endpoint.id);
      return Buffer.from(JSON.stringify({ ...fields, sealedSecrets }), 'utf8');
    },

    decode(value) {
      try {
        return decode(value);
      } catch (error) {
        const id = idOf(value);
        if (id === undefined) unreadableWithoutId += 1;
        else unreadable.add(id);
        throw error;
      }
    },

    staleIds: () => stale,
    undecodableRecords: () => unreadable.size + unreadableWithoutId,
  };
}
