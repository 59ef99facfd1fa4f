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

/** An Avro type as the codec uses it: the subset of avsc's `Type` it needs. */
export interface AvroType {
  toBuffer(value: unknown): Buffer;
  fromBuffer(buffer: Buffer): unknown;
  isValid(value: unknown, options?: { errorHook?: (path: string[], value: unknown) => void }): boolean;
}

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

export function createAvroCodec(options: AvroCodecOptions): AvroCodec {
  const { client } = options;
  const log = options.logger.child({ component: 'avro-codec' });
  const policy = options.retryPolicy ?? createRetryPolicy({ baseDelayMs: 500, maxDelayMs: 10_000 });
  const registered = new Map<string, { id: number; type: AvroType }>();
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
      registered.set(topic, { id, type: types.get(id)! });
      return id;
    },

    schemaId: (topic) => registered.get(topic)?.id,

    encode(topic, value) {
      const entry = registered.get(topic);
      // A programming error (registration skipped), not a property of the record: never dead-letter for it.
      if (!entry) throw new Error(`no Avro schema registered for topic ${topic}`);
      const invalid: string[] = [];
      const fits = entry.type.isValid(value, {
        errorHook: (path) => invalid.push(path.join('.') || '(record)'),
      });
      let body: Buffer;
      try {
        if (!fits) throw new Error(`invalid ${invalid.join(', ')}`);
        body = entry.type.toBuffer(value);
      } catch (err) {
        throw new ValidationError(
          'encode_failed',
          `the record does not fit the Avro schema of ${subjectOf(topic)}: ${(err as Error).message}`,
          { cause: err },
        );
      }
      const header = Buffer.alloc(HEADER_BYTES);
      header.writeUInt8(MAGIC_BYTE, 0);
      header.writeInt32BE(entry.id, 1);
      return Buffer.concat([header, body]);
    },

    async decode(buffer) {
      if (!buffer || buffer.length < HEADER_BYTES || buffer.readUInt8(0) !== MAGIC_BYTE) {
        throw new ValidationError('bad_avro', 'the record is not in Confluent wire format');
      }
      const type = await typeOf(buffer.readInt32BE(1));
      try {
        return type.fromBuffer(buffer.subarray(HEADER_BYTES));
      } catch (err) {
        throw new ValidationError('bad_avro', `the Avro body cannot be read: ${(err as Error).message}`, {
          cause: err,
        });
      }
    },
  };
}
