import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { canonicalSchema, subjectOf, type CanonicalTopic } from '@ampflow/contracts';
import type { Logger } from '@ampflow/observability';
import {
  AppError,
  DependencyError,
  ValidationError,
  createRetryPolicy,
  retry,
  type RetryPolicy,
} from '@ampflow/runtime';
import { registerSubjectSchema } from './schema-registration';

/**
 * An Avro type as the codec uses it: the subset of avsc's `Type` it needs. As avsc's do, `toBuffer` and
 * `encode` throw on a value that does not fit; `isValid` then says where.
 */
export interface AvroType {
  toBuffer(value: unknown): Buffer;
  /** Writes `value` into `buffer` from `position`; the position after it, or a negative count of bytes missing. */
  encode?(value: unknown, buffer: Buffer, position: number): number;
  fromBuffer(buffer: Buffer): unknown;
  isValid(value: unknown, options?: { errorHook?: (path: string[], value: unknown) => void }): boolean;
}

/** What {@link AvroCodec.decodeAll} makes of one record value. */
export type DecodeResult = { value: unknown } | { error: AppError };

/**
 * The schema registry as the codec sees it. {@link createRegistryClient} is the real one; unit tests give a fake.
 */
export interface RegistryClient {
  /**
   * Sets BACKWARD compatibility on `subject` and registers `schema` (Avro JSON text) under it; resolves to its id.
   * Rejects with a {@link DependencyError} when the registry does not answer, with a plain `Error` when it refuses
   * the schema as incompatible.
   */
  register(subject: string, schema: string): Promise<number>;
  /** The type of schema `id`; rejects with an error whose `status` is 404 when the registry has no such id. */
  typeOf(id: number): Promise<AvroType>;
}

/** The registry client over @kafkajs/confluent-schema-registry, at a Confluent-compatible API base URL. */
export function createRegistryClient(registryUrl: string): RegistryClient {
  const registry = new SchemaRegistry({ host: registryUrl });
  return {
    register: (subject, schema) => registerSubjectSchema(registry, registryUrl, subject, schema),
    // For Avro schemas the library hands back avsc types.
    typeOf: async (id) => (await registry.getSchema(id)) as unknown as AvroType,
  };
}

/**
 * Avro in Confluent wire format (magic byte 0, schema id as a 32-bit big-endian integer, Avro body), with the
 * registry's schemas and ids cached. Errors are classified for the consumer runner: what can never be encoded or
 * read is a permanent {@link ValidationError} (dead-lettered); a registry that does not answer is a retriable
 * {@link DependencyError} `registry_unavailable`.
 */
export interface AvroCodec {
  /**
   * Registers the schema of canonical stream `schemaOf` under `<topic>-value` (compatibility BACKWARD), retrying
   * while the registry does not answer; resolves to the schema id, which `encode(topic, ...)` then uses.
   * Rejects at once when the registry refuses the schema as incompatible, and when the codec is stopped.
   */
  register(topic: string, schemaOf: CanonicalTopic): Promise<number>;
  /** The schema id registered for `topic`, if any yet. */
  schemaId(topic: string): number | undefined;
  /**
   * Encodes `value` with the schema registered for `topic`. Throws `ValidationError('encode_failed')` when the
   * value does not fit the schema. `topic` must have been registered first.
   */
  encode(topic: string, value: unknown): Buffer;
  /**
   * Decodes a record value written with any schema of the registry. Throws `ValidationError` `bad_avro` (not wire
   * format, or an Avro body that cannot be read), `unknown_schema` (an id the registry does not know), and
   * `DependencyError('registry_unavailable')` when the registry does not answer.
   */
  decode(buffer: Buffer | null | undefined): Promise<unknown>;
  /**
   * Decodes many record values at once: one look-up per schema id not seen before (none once every id is
   * known), then each value is decoded in turn, with no promise per value. Per value, the value or the
   * `ValidationError` `decode` would throw; rejects with `DependencyError('registry_unavailable')` when the
   * registry does not answer for an id some value needs.
   */
  decodeAll(buffers: ReadonlyArray<Buffer | null | undefined>): Promise<DecodeResult[]>;
}

export interface AvroCodecOptions {
  client: RegistryClient;
  logger: Logger;
  /** Backoff of a registration while the registry does not answer (default 500 ms doubling to 10 s, unbounded). */
  retryPolicy?: RetryPolicy;
  /** True once the owner is stopping: a registration in progress gives up with its last error. */
  isStopped?: () => boolean;
}

const MAGIC_BYTE = 0;
const HEADER_BYTES = 5;

/** The schema id of a value in Confluent wire format; throws `bad_avro` for anything else. */
function schemaIdOf(buffer: Buffer | null | undefined): number {
  if (!buffer || buffer.length < HEADER_BYTES || buffer.readUInt8(0) !== MAGIC_BYTE) {
    throw new ValidationError('bad_avro', 'the record is not in Confluent wire format');
  }
  return buffer.readInt32BE(1);
}

function decodeWith(type: AvroType, buffer: Buffer): unknown {
  try {
    return type.fromBuffer(buffer.subarray(HEADER_BYTES));
  } catch (err) {
    throw new ValidationError('bad_avro', `the Avro body cannot be read: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** Scratch space of {@link writerOf}'s writers, grown when a value does not fit. */
let scratch = Buffer.allocUnsafe(64 * 1024);

/**
 * How values of `type` are written in wire format with schema `id`: header and body into the scratch buffer,
 * copied out once (avsc's `toBuffer` and a header joined to it would copy the body twice).
 */
function writerOf(type: AvroType, id: number): (value: unknown) => Buffer {
  const encode = type.encode?.bind(type);
  if (!encode) {
    return (value) => {
      const body = type.toBuffer(value);
      const out = Buffer.allocUnsafe(HEADER_BYTES + body.length);
      out.writeUInt8(MAGIC_BYTE, 0);
      out.writeInt32BE(id, 1);
      body.copy(out, HEADER_BYTES);
      return out;
    };
  }
  return (value) => {
    for (;;) {
      const end = encode(value, scratch, HEADER_BYTES);
      if (end >= 0) {
        scratch.writeUInt8(MAGIC_BYTE, 0);
        scratch.writeInt32BE(id, 1);
        const out = Buffer.allocUnsafe(end);
        scratch.copy(out, 0, 0, end);
        return out;
      }
      scratch = Buffer.allocUnsafe(Math.max(2 * scratch.length, scratch.length - end));
    }
  };
}

export function createAvroCodec(options: AvroCodecOptions): AvroCodec {
  const { client } = options;
  const log = options.logger.child({ component: 'avro-codec' });
  const policy = options.retryPolicy ?? createRetryPolicy({ baseDelayMs: 500, maxDelayMs: 10_000 });
  /** Per topic: the writer schema's id (known since registration), its type and how to write a value. */
  const registered = new Map<string, { id: number; type: AvroType; write: (value: unknown) => Buffer }>();
  const types = new Map<number, AvroType>();

  /** Look-ups in flight, shared: a batch of records with a new schema id fetches and parses it once. */
  const fetching = new Map<number, Promise<AvroType>>();

  function typeOf(id: number): Promise<AvroType> {
    const cached = types.get(id);
    if (cached) return Promise.resolve(cached);
    let pending = fetching.get(id);
    if (!pending) {
      pending = fetchType(id).finally(() => fetching.delete(id));
      fetching.set(id, pending);
    }
    return pending;
  }

  async function fetchType(id: number): Promise<AvroType> {
    let type: AvroType;
    try {
      type = await client.typeOf(id);
    } catch (err) {
      if ((err as { status?: number }).status === 404) {
        throw new ValidationError('unknown_schema', `schema id ${id} is not in the registry`, { cause: err });
      }
      throw new DependencyError('registry_unavailable', 'the schema registry did not answer', { cause: err });
    }
    types.set(id, type);
    return type;
  }

  return {
    async register(topic, schemaOf) {
      const subject = subjectOf(topic);
      const id = await retry(
        async () => {
          const id = await client.register(subject, canonicalSchema(schemaOf));
          await typeOf(id);
          return id;
        },
        {
          policy,
          isStopped: options.isStopped,
          // An incompatible schema is a plain Error: a deployment error that waiting does not mend.
          shouldRetry: (error) => error instanceof AppError && error.retriable,
          onRetry: ({ error, attempt, delayMs }) =>
            log.warn({ err: error, subject, attempt, delayMs }, 'schema registry not answering; retrying'),
        },
      );
      const type = types.get(id)!;
      registered.set(topic, { id, type, write: writerOf(type, id) });
      return id;
    },

    schemaId: (topic) => registered.get(topic)?.id,

    encode(topic, value) {
      const entry = registered.get(topic);
      // A programming error (registration skipped), not a property of the record: never dead-letter for it.
      if (!entry) throw new Error(`no Avro schema registered for topic ${topic}`);
      try {
        // A record's writer would take any non-object for a record whose fields all have defaults.
        if (value === null || typeof value !== 'object') throw new Error('not a record');
        return entry.write(value);
      } catch (err) {
        // Writing throws at the first field that does not fit; validation names every one (only on failure:
        // it walks the whole value).
        const invalid: string[] = [];
        entry.type.isValid(value, { errorHook: (path) => invalid.push(path.join('.') || '(record)') });
        const why = invalid.length > 0 ? `invalid ${invalid.join(', ')}` : (err as Error).message;
        throw new ValidationError(
          'encode_failed',
          `the record does not fit the Avro schema of ${subjectOf(topic)}: ${why}`,
          { cause: err },
        );
      }
    },

    decode(buffer) {
      try {
        const id = schemaIdOf(buffer);
        const type = types.get(id);
        // A known schema: the value decoded now, in an already settled promise.
        if (type) return Promise.resolve(decodeWith(type, buffer!));
        return typeOf(id).then((found) => decodeWith(found, buffer!));
      } catch (error) {
        return Promise.reject(error);
      }
    },

    async decodeAll(buffers) {
      const missing = new Set<number>();
      for (const buffer of buffers) {
        if (!buffer || buffer.length < HEADER_BYTES || buffer.readUInt8(0) !== MAGIC_BYTE) continue;
        const id = buffer.readInt32BE(1);
        if (!types.has(id)) missing.add(id);
      }
      /** Ids the registry does not know, with the error each of their values gets. */
      const unknown = new Map<number, AppError>();
      await Promise.all(
        [...missing].map((id) =>
          typeOf(id).catch((error: unknown) => {
            if (error instanceof ValidationError) unknown.set(id, error);
            else throw error;
          }),
        ),
      );
      return buffers.map((buffer): DecodeResult => {
        try {
          const id = schemaIdOf(buffer);
          const failure = unknown.get(id);
          if (failure) return { error: failure };
          return { value: decodeWith(types.get(id)!, buffer!) };
        } catch (error) {
          return { error: error as AppError };
        }
      });
    },
  };
}
