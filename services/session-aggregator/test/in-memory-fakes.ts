/**
 * Small in-memory stand-ins for the aggregator's ports, for unit tests of its pure-ish units (the chunk handler,
 * the sweeper). Integration tests never use them: they run against the real Kafka, registry and Redis.
 */
import { emptyTelemetry, type VehicleTelemetry } from '@ampflow/contracts';
import type { AvroCodec } from '@ampflow/kafka';
import { ValidationError } from '@ampflow/runtime';
import type { SessionStore, StoredState } from '../src/redis-session-store';

const H = 3600_000;
const DAY = Date.parse('2025-08-05T00:00:00.000Z');
let seq = 0;

/** A telemetry reading of `vehicleId` at `hour` of a fixed day (provider time), with the given fields. */
export function aReading(
  vehicleId: string,
  hour: number,
  fields: Partial<VehicleTelemetry> = {},
): VehicleTelemetry {
  seq += 1;
  const provider = vehicleId.split(':')[0]!;
  return {
    ...emptyTelemetry({
      eventId: `${provider}:evt-${seq}`,
      provider,
      vehicleId,
      providerVehicleId: vehicleId.split(':')[1]!,
      userId: null,
      occurredAt: DAY + hour * H,
      receivedAt: DAY + hour * H + 1000,
      sourceEventType: 'VEHICLE_STATE',
    }),
    ...fields,
  };
}

/**
 * A codec over JSON with a "wire format" prefix `avro:`: decode refuses anything else as `bad_avro`; encode
 * refuses a session whose times are not whole milliseconds (as the Avro `long` does) as `encode_failed`.
 */
export function aFakeCodec() {
  const codec = {
    decodeFailure: undefined as Error | undefined,
    encoded: [] as Array<{ topic: string; value: unknown }>,
    wire: (value: unknown) => Buffer.from(`avro:${JSON.stringify(value)}`),
    encode(topic: string, value: unknown): Buffer {
      const { startedAt, endedAt } = value as { startedAt?: number; endedAt?: number | null };
      if (!Number.isInteger(startedAt) || !(endedAt == null || Number.isInteger(endedAt))) {
        throw new ValidationError('encode_failed', 'invalid startedAt');
      }
      codec.encoded.push({ topic, value });
      return Buffer.from(JSON.stringify(value));
    },
    async decode(buffer: Buffer | null | undefined): Promise<unknown> {
      if (codec.decodeFailure) throw codec.decodeFailure;
      const text = buffer?.toString('utf8') ?? '';
      if (!text.startsWith('avro:')) throw new ValidationError('bad_avro', 'not wire format');
      return JSON.parse(text.slice('avro:'.length)) as unknown;
    },
  } satisfies Pick<AvroCodec, 'encode' | 'decode'> & Record<string, unknown>;
  return codec;
}

type StorePort = Pick<
  SessionStore,
  'load' | 'save' | 'epoch' | 'due' | 'deadline' | 'forgetDeadline' | 'claim' | 'release'
>;

/** What a fake store holds, open to the test. */
export interface FakeStoreData {
  /** The restore marker; null as in an emptied Redis. */
  marker: string | null;
  states: Map<string, StoredState>;
  deadlines: Map<string, number | null>;
  claims: Set<string>;
}

/** A session store with the Redis store's semantics: an epoch marker, revisions checked on save, deadlines, claims. */
export function aFakeStore(options: { epoch?: string | null } = {}): StorePort & FakeStoreData {
  const store: StorePort & FakeStoreData = {
    marker: options.epoch === undefined ? 'e1' : options.epoch,
    states: new Map(),
    deadlines: new Map(),
    claims: new Set(),
    epoch: async () => store.marker,
    load: async (ids) => ({
      epoch: store.marker,
      states: new Map(
        ids.flatMap((id) => (store.states.has(id) ? [[id, store.states.get(id)!] as const] : [])),
      ),
    }),
    save: async (epoch, writes) => {
      if (epoch !== store.marker) return { lost: [], reset: true };
      const lost: string[] = [];
      for (const w of writes) {
        if ((store.states.get(w.vehicleId)?.rev ?? 0) !== w.expectedRev) {
          lost.push(w.vehicleId);
          continue;
        }
        store.states.set(w.vehicleId, { rev: w.expectedRev + 1, state: w.state });
        store.deadlines.set(w.vehicleId, w.deadline);
      }
      return { lost, reset: false };
    },
    due: async (now, limit) =>
      [...store.deadlines]
        .filter((e): e is [string, number] => e[1] !== null && e[1] <= now)
        .slice(0, limit)
        .map(([vehicleId, deadline]) => ({ vehicleId, deadline })),
    deadline: async (vehicleId) => store.deadlines.get(vehicleId) ?? null,
    forgetDeadline: async (vehicleId) => {
      store.deadlines.delete(vehicleId);
    },
    claim: async (vehicleId) => {
      if (store.claims.has(vehicleId)) return false;
      store.claims.add(vehicleId);
      return true;
    },
    release: async (vehicleId) => {
      store.claims.delete(vehicleId);
    },
  };
  return store;
}
