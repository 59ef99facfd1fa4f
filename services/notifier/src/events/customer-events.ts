import type {
  ChargingSession,
  CommandResult,
  CustomerEventType,
  DeviceLink,
  GeoLocation,
  VehicleError,
  VehicleTelemetry,
} from '@ampflow/contracts';
import { messageId } from '@ampflow/contracts';
import { applyPlugReading, type PlugEventType, type PlugState } from './plug-state';

// The public names live in the contract; re-exported for the notifier's own modules.
export { CUSTOMER_EVENT_TYPES, type CustomerEventType } from '@ampflow/contracts';

/**
 * What customers learn about a vehicle besides its id, from device links and the providers' vehicle objects.
 * Every field is null while unknown. The VIN is deliberately absent (see vehicle-directory.ts).
 */
export interface VehicleSummary {
  make: string | null;
  model: string | null;
  year: number | null;
  nickname: string | null;
}

export const UNKNOWN_VEHICLE: VehicleSummary = Object.freeze({
  make: null,
  model: null,
  year: null,
  nickname: null,
});

/**
 * `charging_session.*`. Times are ISO-8601 UTC strings; `version` increases by one per change of the session,
 * so a receiver can drop an `updated` that arrives after a newer one (deliveries are not ordered).
 */
export interface ChargingSessionData {
  sessionId: string;
  vehicleId: string;
  provider: string;
  userId: string | null;
  status: ChargingSession['status'];
  startedAt: string;
  endedAt: string | null;
  durationSeconds: number | null;
  socStartPercent: number | null;
  socEndPercent: number | null;
  energyAddedKwh: number | null;
  energySource: ChargingSession['energySource'];
  maxPowerKw: number | null;
  location: GeoLocation | null;
  endReason: ChargingSession['endReason'];
  version: number;
  vehicle: VehicleSummary;
}

/** `vehicle.plugged_in` / `vehicle.unplugged`: the reading that showed the change. */
export interface PlugData {
  vehicleId: string;
  provider: string;
  userId: string | null;
  isPluggedIn: boolean;
  occurredAt: string;
  chargingState: VehicleTelemetry['chargingState'];
  stateOfChargePercent: number | null;
  vehicle: VehicleSummary;
}

/** `vehicle.telemetry`: one provider reading; metric units carried in the names, null when not reported. */
export interface TelemetryData {
  vehicleId: string;
  providerVehicleId: string;
  provider: string;
  userId: string | null;
  occurredAt: string;
  isCharging: boolean | null;
  isPluggedIn: boolean | null;
  chargingState: VehicleTelemetry['chargingState'];
  stateOfChargePercent: number | null;
  rangeKm: number | null;
  chargePowerKw: number | null;
  chargeVoltageV: number | null;
  chargeCurrentA: number | null;
  energyAddedKwh: number | null;
  chargeLimitPercent: number | null;
  targetSocPercent: number | null;
  timeToCompleteMinutes: number | null;
  batteryCapacityKwh: number | null;
  location: GeoLocation | null;
  odometerKm: number | null;
  /** Signal names that triggered the reading, as the provider named them. */
  triggers: string[];
  vehicle: VehicleSummary;
}

/** `command.result`. `vehicleId` is the target when the target is a vehicle, else null. */
export interface CommandResultData {
  provider: string;
  targetType: CommandResult['targetType'];
  targetId: string;
  vehicleId: string | null;
  userId: string | null;
  action: CommandResult['action'];
  providerAction: string;
  success: boolean;
  code: string | null;
  message: string | null;
  jobId: string | null;
  receivedAt: string;
  vehicle: VehicleSummary | null;
}

/** One device of a `device.*` event; as linked, without the VIN. */
export interface DeviceData {
  deviceId: string;
  vehicleId: string;
  deviceType: string | null;
  make: string | null;
  model: string | null;
  year: number | null;
  nickname: string | null;
  country: string | null;
  engineType: string | null;
}

/** `device.connected` / `device.disconnected`: one event per provider notification, all its devices. */
export interface DeviceLinkData {
  provider: string;
  userId: string;
  devices: DeviceData[];
}

/** `vehicle.error`. */
export interface VehicleErrorData {
  vehicleId: string;
  provider: string;
  userId: string | null;
  occurredAt: string;
  errors: Array<{
    type: string;
    code: string | null;
    state: 'ERROR' | 'RESOLVED';
    description: string | null;
    suggestedUserMessage: string | null;
    resolution: string | null;
    signals: string[];
  }>;
  vehicle: VehicleSummary;
}

export interface CustomerEventDataMap {
  'charging_session.started': ChargingSessionData;
  'charging_session.updated': ChargingSessionData;
  'charging_session.ended': ChargingSessionData;
  'vehicle.plugged_in': PlugData;
  'vehicle.unplugged': PlugData;
  'vehicle.telemetry': TelemetryData;
  'command.result': CommandResultData;
  'device.connected': DeviceLinkData;
  'device.disconnected': DeviceLinkData;
  'vehicle.error': VehicleErrorData;
}

/** Fields the dispatcher filters and routes on; never sent to customers. */
export interface EventRouting {
  provider: string;
  /** Vehicles the event is about (several for a device link, none for a charger command). */
  vehicleIds: string[];
  userId: string | null;
  /** The canonical record's id (`<sessionId>:<version>` for sessions), the input of {@link messageId}. */
  sourceId: string;
}

/** A customer event before delivery: its deterministic id, the body's parts, and routing fields. */
export type CustomerEvent<T extends CustomerEventType = CustomerEventType> = {
  [K in T]: {
    /** `webhook-id`, from {@link messageId}. */
    id: string;
    type: K;
    /** When it happened, ISO-8601 UTC: the body's `timestamp`. */
    timestamp: string;
    data: CustomerEventDataMap[K];
    routing: EventRouting;
  };
}[T];

/** The JSON body sent to customers: `{ type, timestamp, data }`. */
export interface CustomerEventBody {
  type: CustomerEventType;
  timestamp: string;
  data: CustomerEventDataMap[CustomerEventType];
}

export function toBody(event: CustomerEvent): CustomerEventBody {
  return { type: event.type, timestamp: event.timestamp, data: event.data };
}

const iso = (epochMs: number): string => new Date(epochMs).toISOString();
const isoOrNull = (epochMs: number | null): string | null => (epochMs === null ? null : iso(epochMs));

function build<K extends CustomerEventType>(
  type: K,
  timestampMs: number,
  data: CustomerEventDataMap[K],
  routing: EventRouting,
): CustomerEvent<K> {
  return {
    id: messageId(routing.sourceId, type),
    type,
    timestamp: iso(timestampMs),
    data,
    routing,
  } as CustomerEvent<K>;
}

const SESSION_TYPES = {
  STARTED: 'charging_session.started',
  UPDATED: 'charging_session.updated',
  ENDED: 'charging_session.ended',
} as const;

/**
 * `charging_session.*` from one session change. The timestamp is the session's start for `started`, its end
 * for `ended`; a session record carries no time of its own update, so `updated` uses `recordTimestampMs`
 * (the Kafka record's timestamp, stable across replays) when the wiring passes it, else the start time.
 */
export function fromChargingSession(
  session: ChargingSession,
  recordTimestampMs?: number,
): CustomerEvent<'charging_session.started' | 'charging_session.updated' | 'charging_session.ended'> {
  const type = SESSION_TYPES[session.change];
  const timestampMs =
    session.change === 'STARTED'
      ? session.startedAt
      : session.change === 'ENDED'
        ? (session.endedAt ?? recordTimestampMs ?? session.startedAt)
        : (recordTimestampMs ?? session.startedAt);
  return build(
    type,
    timestampMs,
    {
      sessionId: session.sessionId,
      vehicleId: session.vehicleId,
      provider: session.provider,
      userId: session.userId,
      status: session.status,
      startedAt: iso(session.startedAt),
      endedAt: isoOrNull(session.endedAt),
      durationSeconds: session.durationSeconds,
      socStartPercent: session.socStartPercent,
      socEndPercent: session.socEndPercent,
      energyAddedKwh: session.energyAddedKwh,
      energySource: session.energySource,
      maxPowerKw: session.maxPowerKw,
      location: session.location,
      endReason: session.endReason,
      version: session.version,
      vehicle: UNKNOWN_VEHICLE,
    },
    {
      provider: session.provider,
      vehicleIds: [session.vehicleId],
      userId: session.userId,
      sourceId: `${session.sessionId}:${session.version}`,
    },
  );
}

/** `vehicle.telemetry` from one reading; its timestamp is the provider's `occurredAt`. */
export function fromTelemetry(reading: VehicleTelemetry): CustomerEvent<'vehicle.telemetry'> {
  return build(
    'vehicle.telemetry',
    reading.occurredAt,
    {
      vehicleId: reading.vehicleId,
      providerVehicleId: reading.providerVehicleId,
      provider: reading.provider,
      userId: reading.userId,
      occurredAt: iso(reading.occurredAt),
      isCharging: reading.isCharging,
      isPluggedIn: reading.isPluggedIn,
      chargingState: reading.chargingState,
      stateOfChargePercent: reading.stateOfChargePercent,
      rangeKm: reading.rangeKm,
      chargePowerKw: reading.chargePowerKw,
      chargeVoltageV: reading.chargeVoltageV,
      chargeCurrentA: reading.chargeCurrentA,
      energyAddedKwh: reading.energyAddedKwh,
      chargeLimitPercent: reading.chargeLimitPercent,
      targetSocPercent: reading.targetSocPercent,
      timeToCompleteMinutes: reading.timeToCompleteMinutes,
      batteryCapacityKwh: reading.batteryCapacityKwh,
      location: reading.location,
      odometerKm: reading.odometerKm,
      triggers: [...reading.triggers],
      vehicle: UNKNOWN_VEHICLE,
    },
    telemetryRouting(reading),
  );
}

function telemetryRouting(reading: VehicleTelemetry): EventRouting {
  return {
    provider: reading.provider,
    vehicleIds: [reading.vehicleId],
    userId: reading.userId,
    sourceId: reading.eventId,
  };
}

/**
 * `vehicle.plugged_in` / `vehicle.unplugged` for a reading that {@link applyPlugReading} said fires `type`.
 * The reading must say whether the vehicle is plugged in.
 */
export function fromPlugChange(reading: VehicleTelemetry, type: PlugEventType): CustomerEvent<PlugEventType> {
  return build(
    type,
    reading.occurredAt,
    {
      vehicleId: reading.vehicleId,
      provider: reading.provider,
      userId: reading.userId,
      isPluggedIn: type === 'vehicle.plugged_in',
      occurredAt: iso(reading.occurredAt),
      chargingState: reading.chargingState,
      stateOfChargePercent: reading.stateOfChargePercent,
      vehicle: UNKNOWN_VEHICLE,
    },
    telemetryRouting(reading),
  );
}

/** `command.result`; a command record has no provider time, so its timestamp is when we received it. */
export function fromCommandResult(result: CommandResult): CustomerEvent<'command.result'> {
  const vehicleId = result.targetType === 'VEHICLE' ? result.targetId : null;
  return build(
    'command.result',
    result.receivedAt,
    {
      provider: result.provider,
      targetType: result.targetType,
      targetId: result.targetId,
      vehicleId,
      userId: null,
      action: result.action,
      providerAction: result.providerAction,
      success: result.success,
      code: result.code,
      message: result.message,
      jobId: result.jobId,
      receivedAt: iso(result.receivedAt),
      // A charger command has no vehicle to describe.
      vehicle: vehicleId === null ? null : UNKNOWN_VEHICLE,
    },
    {
      provider: result.provider,
      vehicleIds: vehicleId === null ? [] : [vehicleId],
      userId: null,
      sourceId: result.eventId,
    },
  );
}

/** `device.connected` / `device.disconnected`: the devices as linked, VIN dropped; timestamp = received. */
export function fromDeviceLink(link: DeviceLink): CustomerEvent<'device.connected' | 'device.disconnected'> {
  const type = link.change === 'CONNECTED' ? 'device.connected' : 'device.disconnected';
  return build(
    type,
    link.receivedAt,
    {
      provider: link.provider,
      userId: link.userId,
      devices: link.devices.map((d) => ({
        deviceId: d.deviceId,
        vehicleId: d.vehicleId,
        deviceType: d.deviceType,
        make: d.make,
        model: d.model,
        year: d.year,
        nickname: d.nickname,
        country: d.country,
        engineType: d.engineType,
      })),
    },
    {
      provider: link.provider,
      vehicleIds: [...new Set(link.devices.map((d) => d.vehicleId))],
      userId: link.userId,
      sourceId: link.eventId,
    },
  );
}

/** `vehicle.error`; timestamp = the provider's `occurredAt`. */
export function fromVehicleError(error: VehicleError): CustomerEvent<'vehicle.error'> {
  return build(
    'vehicle.error',
    error.occurredAt,
    {
      vehicleId: error.vehicleId,
      provider: error.provider,
      userId: error.userId,
      occurredAt: iso(error.occurredAt),
      errors: error.errors.map((e) => ({
        type: e.type,
        code: e.code,
        state: e.state,
        description: e.description,
        suggestedUserMessage: e.suggestedUserMessage,
        resolution: e.resolution,
        signals: [...e.signals],
      })),
      vehicle: UNKNOWN_VEHICLE,
    },
    {
      provider: error.provider,
      vehicleIds: [error.vehicleId],
      userId: error.userId,
      sourceId: error.eventId,
    },
  );
}

/**
 * The events of one telemetry reading: always `vehicle.telemetry`, plus `vehicle.plugged_in|unplugged` when
 * the reading flips the vehicle's plug state. Returns the plug state to keep for the vehicle.
 */
export function fromTelemetryWithPlugState(
  reading: VehicleTelemetry,
  previousPlug: PlugState | null,
): { events: CustomerEvent[]; plugState: PlugState | null } {
  const decision = applyPlugReading(previousPlug, reading);
  const events: CustomerEvent[] = [fromTelemetry(reading)];
  if (decision.event !== null) events.push(fromPlugChange(reading, decision.event));
  return { events, plugState: decision.state };
}
