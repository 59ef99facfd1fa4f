import pino from 'pino';
import { Topics } from '@ampflow/contracts';
import { AppError, DependencyError, createRetryPolicy } from '@ampflow/runtime';
import { createAvroCodec, type AvroType, type RegistryClient } from './avro-codec';

const logger = pino({ level: 'silent' });

/**
 * A stand-in Avro type: a value fits when it is an object with a string `vehicleId`; the body is its JSON text.
 * Enough to exercise the codec's classification without a registry or avsc. Like avsc's, writing a value that
 * does not fit throws; `encode` (avsc's write into a given buffer) is there unless `withEncode` is false.
 */
const aType = (withEncode = true): AvroType => {
  const fits = (value: unknown) => typeof (value as { vehicleId?: unknown })?.vehicleId === 'string';
  const body = (value: unknown) => {
    if (!fits(value)) throw new Error('invalid "string": 42');
    return Buffer.from(JSON.stringify(value));
  };
  return {
    isValid: (value, options) => {
      if (!fits(value)) options?.errorHook?.(['vehicleId'], value);
      return fits(value);
    },
    toBuffer: body,
    ...(withEncode
      ? {
          encode: (value: unknown, buffer: Buffer, position: number) => {
            const bytes = body(value);
            if (position + bytes.length > buffer.length) return buffer.length - (position + bytes.length);
            bytes.copy(buffer, position);
            return position + bytes.length;
          },
        }
      : {}),
    fromBuffer: (buffer) => JSON.parse(buffer.toString('utf8')) as unknown,
  };
};

const status = (code: number) => Object.assign(new Error(`registry answered ${code}`), { status: code });

/** A fake registry: knows the ids given, fails the first `failures` calls of each operation. */
function aFakeRegistry(
  options: {
    ids?: number[];
    registerFailures?: unknown[];
    lookupFailure?: unknown;
    withEncode?: boolean;
  } = {},
) {
  const known = new Map((options.ids ?? [7]).map((id) => [id, aType(options.withEncode)]));
  const registerFailures = [...(options.registerFailures ?? [])];
  const calls = { register: [] as string[], typeOf: [] as number[] };
  const client: RegistryClient = {
    register: async (subject) => {
      calls.register.push(subject);
      const failure = registerFailures.shift();
      if (failure) throw failure;
      return 7;
    },
    typeOf: async (id) => {
      calls.typeOf.push(id);
      if (options.lookupFailure) throw options.lookupFailure;
      const type = known.get(id);
      if (!type) throw status(404);
      return type;
    },
  };
  return { client, calls };
}

const fastPolicy = createRetryPolicy({ baseDelayMs: 1, maxDelayMs: 2 });

function wire(id: number, body: Buffer | string): Buffer {
  const header = Buffer.alloc(5);
  header.writeInt32BE(id, 1);
  return Buffer.concat([header, Buffer.from(body)]);
}

async function caught(promise: Promise<unknown> | (() => unknown)): Promise<AppError> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (error) {
    if (error instanceof AppError) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

describe('the Avro codec', () => {
  it('registers under <topic>-value, caches the id, and encodes in Confluent wire format', async () => {
    const { client, calls } = aFakeRegistry();
    const codec = createAvroCodec({ client, logger, retryPolicy: fastPolicy });
    expect(codec.schemaId('t')).toBeUndefined();
    expect(await codec.register('t', Topics.chargingSessions)).toBe(7);
    expect(codec.schemaId('t')).toBe(7);

    const encoded = codec.encode('t', { vehicleId: 'smartcar:1' });
    expect(encoded.readUInt8(0)).toBe(0);
    expect(encoded.readInt32BE(1)).toBe(7);
    expect(await codec.decode(encoded)).toEqual({ vehicleId: 'smartcar:1' });
    expect(await codec.decode(encoded)).toEqual({ vehicleId: 'smartcar:1' });
    expect(calls).toEqual({ register: ['t-value'], typeOf: [7] });
  });

  it.each([
    ['written in place', true],
    ['joined to its header', false],
  ])('encodes values of any size the same way (%s)', async (_, withEncode) => {
    const codec = createAvroCodec({ client: aFakeRegistry({ withEncode }).client, logger });
    await codec.register('t', Topics.chargingSessions);
    // Larger than the scratch space the writer starts with, then small again.
    for (const vehicleId of ['smartcar:1', 'x'.repeat(200_000), 'smartcar:2']) {
      const encoded = codec.encode('t', { vehicleId });
      expect(encoded.readInt32BE(1)).toBe(7);
      expect(encoded.subarray(5).toString()).toBe(JSON.stringify({ vehicleId }));
    }
  });

  it('decodes many values with one look-up per new schema id, each value its own result', async () => {
    const { client, calls } = aFakeRegistry({ ids: [7, 8] });
    const codec = createAvroCodec({ client, logger });
    const results = await codec.decodeAll([
      wire(7, '{"vehicleId":"a"}'),
      wire(8, '{"vehicleId":"b"}'),
      wire(99, '{}'),
      Buffer.from('{"vehicleId":"x"}'),
      wire(7, '{"vehicleId":"c"}'),
      wire(7, '{not avro'),
      null,
    ]);
    expect(results.map((r) => ('value' in r ? r.value : r.error.code))).toEqual([
      { vehicleId: 'a' },
      { vehicleId: 'b' },
      'unknown_schema',
      'bad_avro',
      { vehicleId: 'c' },
      'bad_avro',
      'bad_avro',
    ]);
    expect(calls.typeOf.sort()).toEqual([7, 8, 99]);
    await codec.decodeAll([wire(7, '{"vehicleId":"d"}'), wire(8, '{"vehicleId":"e"}')]);
    expect(calls.typeOf).toHaveLength(3);
  });

  it('rejects a batch as retriable when the registry does not answer for an id it needs', async () => {
    const codec = createAvroCodec({
      client: aFakeRegistry({ lookupFailure: status(503) }).client,
      logger,
    });
    const error = await caught(codec.decodeAll([wire(7, '{"vehicleId":"a"}')]));
    expect(error).toMatchObject({ code: 'registry_unavailable', retriable: true });
  });

  it('retries registration while the registry does not answer', async () => {
    const unavailable = new DependencyError('registry_unavailable', 'no answer');
    const { client, calls } = aFakeRegistry({ registerFailures: [unavailable, unavailable] });
    const codec = createAvroCodec({ client, logger, retryPolicy: fastPolicy });
    expect(await codec.register('t', Topics.chargingSessions)).toBe(7);
    expect(calls.register).toHaveLength(3);
  });

  it('does not retry a schema the registry refuses as incompatible', async () => {
    const refused = new Error('the registry refuses the schema of t-value as incompatible (BACKWARD)');
    const { client, calls } = aFakeRegistry({ registerFailures: [refused] });
    const codec = createAvroCodec({ client, logger, retryPolicy: fastPolicy });
    await expect(codec.register('t', Topics.chargingSessions)).rejects.toBe(refused);
    expect(calls.register).toHaveLength(1);
  });

  it('gives up registering once stopped', async () => {
    const unavailable = new DependencyError('registry_unavailable', 'no answer');
    const { client } = aFakeRegistry({ registerFailures: [unavailable, unavailable, unavailable] });
    const codec = createAvroCodec({ client, logger, retryPolicy: fastPolicy, isStopped: () => true });
    await expect(codec.register('t', Topics.chargingSessions)).rejects.toBe(unavailable);
  });

  it('refuses a value that does not fit its schema as a permanent encode_failed', async () => {
    const codec = createAvroCodec({ client: aFakeRegistry().client, logger, retryPolicy: fastPolicy });
    await codec.register('t', Topics.chargingSessions);
    const error = await caught(() => codec.encode('t', { vehicleId: 42 }));
    expect(error).toMatchObject({ code: 'encode_failed', retriable: false });
    expect(error.message).toContain('t-value');
    expect(error.message).toContain('vehicleId');
  });

  it('refuses to encode for a topic never registered, as a bug rather than a bad record', async () => {
    const codec = createAvroCodec({ client: aFakeRegistry().client, logger });
    expect(() => codec.encode('nowhere', { vehicleId: 'x' })).toThrow('no Avro schema registered');
    expect(() => codec.encode('nowhere', { vehicleId: 'x' })).not.toThrow(AppError);
  });

  it.each([
    ['no value', null],
    ['too short for the header', Buffer.from([0, 0, 0])],
    ['another magic byte', Buffer.concat([Buffer.from([1]), wire(7, '{}').subarray(1)])],
    ['plain JSON', Buffer.from('{"vehicleId":"x"}')],
  ])('refuses a buffer that is not Confluent wire format (%s) as a permanent bad_avro', async (_, buffer) => {
    const codec = createAvroCodec({ client: aFakeRegistry().client, logger });
    expect(await caught(codec.decode(buffer))).toMatchObject({ code: 'bad_avro', retriable: false });
  });

  it('refuses an Avro body that cannot be read as a permanent bad_avro', async () => {
    const codec = createAvroCodec({ client: aFakeRegistry().client, logger });
    expect(await caught(codec.decode(wire(7, '{not avro')))).toMatchObject({
      code: 'bad_avro',
      retriable: false,
    });
  });

  it('refuses a schema id the registry does not know (404) as a permanent unknown_schema', async () => {
    const codec = createAvroCodec({ client: aFakeRegistry().client, logger });
    const error = await caught(codec.decode(wire(99, '{}')));
    expect(error).toMatchObject({ code: 'unknown_schema', retriable: false });
    expect(error.message).toContain('99');
  });

  it.each([
    ['a 5xx answer', status(503)],
    ['no answer at all', new Error('connect ECONNREFUSED 127.0.0.1:8081')],
  ])('reports a registry that fails with %s as retriable registry_unavailable', async (_, failure) => {
    const codec = createAvroCodec({ client: aFakeRegistry({ lookupFailure: failure }).client, logger });
    const error = await caught(codec.decode(wire(7, '{}')));
    expect(error).toBeInstanceOf(DependencyError);
    expect(error).toMatchObject({ code: 'registry_unavailable', retriable: true });
  });
});
