import { createServer } from 'node:net';
import pino from 'pino';
import { Topics, type ChargingSession } from '@ampflow/contracts';
import { createAvroCodec, createRegistryClient } from '@ampflow/kafka';
import { AppError, createRetryPolicy } from '@ampflow/runtime';
import { testEndpoints, uniqueName } from '@ampflow/testing';

const logger = pino({ level: 'silent' });
const fastPolicy = createRetryPolicy({ baseDelayMs: 10, maxDelayMs: 50 });
const codecAt = (url = testEndpoints().schemaRegistryUrl, isStopped?: () => boolean) =>
  createAvroCodec({ client: createRegistryClient(url), logger, retryPolicy: fastPolicy, isStopped });

const session: ChargingSession = {
  sessionId: 'sess-1',
  vehicleId: 'smartcar:829e30ab',
  provider: 'smartcar',
  userId: null,
  change: 'STARTED',
  status: 'ACTIVE',
  startedAt: 1754380800000,
  endedAt: null,
  durationSeconds: null,
  socStartPercent: 30,
  socEndPercent: 30,
  energyAddedKwh: null,
  energySource: 'UNKNOWN',
  maxPowerKw: 7,
  location: null,
  endReason: null,
  eventCount: 1,
  version: 1,
};

async function rejection(promise: Promise<unknown>): Promise<AppError> {
  const error: unknown = await promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  if (!(error instanceof AppError)) throw error;
  return error;
}

/** A loopback port with nothing listening (taken, then released). */
async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}/apis/ccompat/v7`;
}

describe('the Avro codec against the real schema registry', () => {
  it('registers once per schema, encodes in wire format, and a fresh codec decodes by schema id', async () => {
    const topic = uniqueName('codec.sessions');
    const codec = codecAt();
    const id = await codec.register(topic, Topics.chargingSessions);
    expect(await codecAt().register(topic, Topics.chargingSessions)).toBe(id);

    const encoded = codec.encode(topic, session);
    expect(encoded.readUInt8(0)).toBe(0);
    expect(encoded.readInt32BE(1)).toBe(id);
    expect(await codecAt().decode(encoded)).toEqual(session);
  });

  it('classifies what can never be encoded or read as permanent', async () => {
    const topic = uniqueName('codec.sessions');
    const codec = codecAt();
    const id = await codec.register(topic, Topics.chargingSessions);

    expect(() => codec.encode(topic, { ...session, startedAt: 1754380800000.5 })).toThrow(
      expect.objectContaining({ code: 'encode_failed', retriable: false }),
    );
    expect(() => codec.encode(topic, { ...session, change: 'PAUSED' })).toThrow(/change/);

    const corrupt = Buffer.concat([codec.encode(topic, session).subarray(0, 12), Buffer.from([0xff, 0xff])]);
    expect(await rejection(codec.decode(corrupt))).toMatchObject({ code: 'bad_avro', retriable: false });
    expect(await rejection(codec.decode(Buffer.from('{"vehicleId":"x"}')))).toMatchObject({
      code: 'bad_avro',
      retriable: false,
    });

    const unknownId = Buffer.from(codec.encode(topic, session));
    unknownId.writeInt32BE(id + 1_000_000, 1);
    expect(await rejection(codecAt().decode(unknownId))).toMatchObject({
      code: 'unknown_schema',
      retriable: false,
    });
  });

  it('reports a registry that does not answer as retriable, and stops retrying registration when stopped', async () => {
    const encoded = Buffer.concat([Buffer.from([0, 0, 0, 0, 1]), Buffer.from([2])]);
    const url = await closedPortUrl();
    expect(await rejection(codecAt(url).decode(encoded))).toMatchObject({
      code: 'registry_unavailable',
      retriable: true,
    });

    let attempts = 0;
    const stoppedAfterThree = () => ++attempts >= 3;
    expect(
      await rejection(codecAt(url, stoppedAfterThree).register(uniqueName('codec'), Topics.chargingSessions)),
    ).toMatchObject({ code: 'registry_unavailable', retriable: true });
    expect(attempts).toBe(3);
  });
});
