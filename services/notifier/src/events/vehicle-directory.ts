import type {
  ChargingSession,
  CommandResult,
  DeviceLink,
  VehicleError,
  VehicleTelemetry,
} from '@ampflow/contracts';
import type { CustomerEvent, VehicleSummary } from './customer-events';

/** Attributes the directory keeps per vehicle. No VIN: see {@link KnownVehicle}. */
export const KNOWN_FIELDS = ['make', 'model', 'year', 'nickname', 'userId'] as const;
export type KnownField = (typeof KNOWN_FIELDS)[number];

/**
 * What is known of one vehicle, merged from device links and the providers' vehicle objects, with the time of
 * the observation each field came from (epoch ms, our receive time) so that every field is "newest non-null".
 *
 * The VIN is never kept, so it cannot reach a customer body, an attempt log or a dead letter: it identifies a
 * car and through its registration a person (personal data, redacted from our logs too), customers already
 * address vehicles by `vehicleId`, and a webhook body is stored and logged by receivers we do not control.
 */
export interface KnownVehicle {
  vehicleId: string;
  make: string | null;
  model: string | null;
  year: number | null;
  nickname: string | null;
  userId: string | null;
  /** Per field, the `observedAt` of the observation that set it; absent while the field is null. */
  observedAt: Partial<Record<KnownField, number>>;
}

/** One source's view of a vehicle: null or absent fields are "not said", not "cleared". */
export interface VehicleObservation {
  vehicleId: string;
  /** Our receive time of the source record, epoch ms. */
  observedAt: number;
  make?: string | null;
  model?: string | null;
  year?: number | null;
  nickname?: string | null;
  userId?: string | null;
}

/**
 * Merges an observation into what is known: per field, a non-null value wins over the known one when it is
 * at least as new; null never erases. Ordering is by our receive time on purpose: device links carry no
 * provider time, and comparing a provider clock with ours would be meaningless. Pure: returns a new object,
 * or `known` itself when nothing changed (the wiring can skip the write).
 */
export function mergeVehicle(known: KnownVehicle | null, observation: VehicleObservation): KnownVehicle {
  const base: KnownVehicle = known ?? {
    vehicleId: observation.vehicleId,
    make: null,
    model: null,
    year: null,
    nickname: null,
    userId: null,
    observedAt: {},
  };
  let merged: KnownVehicle | null = null;
  for (const field of KNOWN_FIELDS) {
    const value = observation[field];
    if (value === null || value === undefined) continue;
    const since = base.observedAt[field];
    if (since !== undefined && since > observation.observedAt) continue;
    if (base[field] === value && since === observation.observedAt) continue;
    merged ??= { ...base, observedAt: { ...base.observedAt } };
    (merged as unknown as Record<KnownField, unknown>)[field] = value;
    merged.observedAt[field] = observation.observedAt;
  }
  return merged ?? base;
}

/** A canonical record, tagged by the topic it came from. */
export type CanonicalRecord =
  | { kind: 'telemetry'; record: VehicleTelemetry }
  | { kind: 'session'; record: ChargingSession; receivedAt: number }
  | { kind: 'command'; record: CommandResult }
  | { kind: 'device-link'; record: DeviceLink }
  | { kind: 'error'; record: VehicleError; receivedAt: number };

/**
 * What a canonical record tells about vehicles, to fold with {@link mergeVehicle} before its events are
 * enriched (so an event carries what its own record said). Sessions and errors have no receive time of their
 * own: the wiring passes the Kafka record's timestamp.
 */
export function observationsOf(input: CanonicalRecord): VehicleObservation[] {
  switch (input.kind) {
    case 'telemetry': {
      const r = input.record;
      return [
        {
          vehicleId: r.vehicleId,
          observedAt: r.receivedAt,
          make: r.vehicle?.make,
          model: r.vehicle?.model,
          year: r.vehicle?.year,
          nickname: r.vehicle?.nickname,
          userId: r.userId,
        },
      ];
    }
    case 'device-link':
      // A disconnect keeps the user id: the device.disconnected event and stragglers still name the owner,
      // and a later connect to another user is newer and wins.
      return input.record.devices.map((d) => ({
        vehicleId: d.vehicleId,
        observedAt: input.record.receivedAt,
        make: d.make,
        model: d.model,
        year: d.year,
        nickname: d.nickname,
        userId: input.record.userId,
      }));
    case 'session':
    case 'error':
      return input.record.userId === null
        ? []
        : [{ vehicleId: input.record.vehicleId, observedAt: input.receivedAt, userId: input.record.userId }];
    case 'command':
      return [];
  }
}

function summary(known: KnownVehicle | undefined): VehicleSummary {
  return {
    make: known?.make ?? null,
    model: known?.model ?? null,
    year: known?.year ?? null,
    nickname: known?.nickname ?? null,
  };
}

/**
 * Fills an event's `vehicle` block and a missing `userId` from what is known, keyed by vehicle id. An event
 * whose vehicle is unknown is still produced, with nulls; the record's own user id wins over the directory's.
 * Device events describe their devices themselves and only get the vehicle's nickname filled when the link
 * did not carry one. Routing's `userId` follows, so user filters see the enriched value.
 */
export function enrich(event: CustomerEvent, known: ReadonlyMap<string, KnownVehicle>): CustomerEvent {
  switch (event.type) {
    case 'device.connected':
    case 'device.disconnected':
      return {
        ...event,
        data: {
          ...event.data,
          devices: event.data.devices.map((d) => {
            const k = known.get(d.vehicleId);
            return {
              ...d,
              make: d.make ?? k?.make ?? null,
              model: d.model ?? k?.model ?? null,
              year: d.year ?? k?.year ?? null,
              nickname: d.nickname ?? k?.nickname ?? null,
            };
          }),
        },
      };
    case 'command.result': {
      if (event.data.vehicleId === null) return event;
      const k = known.get(event.data.vehicleId);
      const userId = event.data.userId ?? k?.userId ?? null;
      return {
        ...event,
        data: { ...event.data, userId, vehicle: summary(k) },
        routing: { ...event.routing, userId },
      };
    }
    default: {
      const k = known.get(event.data.vehicleId);
      const userId = event.data.userId ?? k?.userId ?? null;
      return {
        ...event,
        data: { ...event.data, userId, vehicle: summary(k) },
        routing: { ...event.routing, userId },
      } as CustomerEvent;
    }
  }
}
