import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Topics } from './topics';

/** Where the `.avsc` files live (shipped with the package). */
export const SCHEMAS_DIR = join(__dirname, '..', 'schemas');

export type ChargingState = 'CHARGING' | 'NOT_CHARGING' | 'FULLY_CHARGED' | 'UNKNOWN';

export interface GeoLocation {
  latitude: number;
  longitude: number;
}

export interface VehicleAttributes {
  make: string | null;
  model: string | null;
  year: number | null;
  vin: string | null;
  nickname: string | null;
}

/** `ev.vehicle-telemetry.v1` (schemas/vehicle-telemetry.avsc). Timestamps are epoch milliseconds. */
export interface VehicleTelemetry {
  eventId: string;
  provider: string;
  vehicleId: string;
  providerVehicleId: string;
  userId: string | null;
  occurredAt: number;
  receivedAt: number;
  sourceEventType: string;
  isCharging: boolean | null;
  isPluggedIn: boolean | null;
  chargingState: ChargingState | null;
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
  vehicle: VehicleAttributes | null;
  triggers: string[];
}

/** `ev.command-results.v1` (schemas/command-result.avsc). */
export interface CommandResult {
  eventId: string;
  provider: string;
  targetType: 'VEHICLE' | 'CHARGER';
  targetId: string;
  action: 'START_CHARGING' | 'STOP_CHARGING' | 'UNKNOWN';
  providerAction: string;
  success: boolean;
  code: string | null;
  message: string | null;
  jobId: string | null;
  receivedAt: number;
}

export interface LinkedDevice {
  deviceId: string;
  vehicleId: string;
  deviceType: string | null;
  make: string | null;
  model: string | null;
  year: number | null;
  vin: string | null;
  nickname: string | null;
  country: string | null;
  engineType: string | null;
}

/** `ev.device-links.v1` (schemas/device-link.avsc). */
export interface DeviceLink {
  eventId: string;
  provider: string;
  userId: string;
  change: 'CONNECTED' | 'DISCONNECTED';
  devices: LinkedDevice[];
  receivedAt: number;
}

export interface VehicleErrorItem {
  type: string;
  code: string | null;
  state: 'ERROR' | 'RESOLVED';
  description: string | null;
  suggestedUserMessage: string | null;
  resolution: string | null;
  signals: string[];
}

/** `ev.vehicle-errors.v1` (schemas/vehicle-error.avsc). */
export interface VehicleError {
  eventId: string;
  provider: string;
  vehicleId: string;
  userId: string | null;
  occurredAt: number;
  errors: VehicleErrorItem[];
}

/** `ev.charging-sessions.v1` (schemas/charging-session.avsc). */
export interface ChargingSession {
  sessionId: string;
  vehicleId: string;
  provider: string;
  userId: string | null;
  change: 'STARTED' | 'UPDATED' | 'ENDED';
  status: 'ACTIVE' | 'COMPLETED';
  startedAt: number;
  endedAt: number | null;
  durationSeconds: number | null;
  socStartPercent: number | null;
  socEndPercent: number | null;
  energyAddedKwh: number | null;
  energySource: 'REPORTED' | 'ESTIMATED_FROM_SOC' | 'UNKNOWN';
  maxPowerKw: number | null;
  location: GeoLocation | null;
  endReason: 'CHARGING_STOPPED' | 'FULLY_CHARGED' | 'UNPLUGGED' | 'INACTIVITY_TIMEOUT' | null;
  eventCount: number;
  version: number;
}

/** A canonical topic and its Avro schema file; the registry subject is `<topic>-value`. */
export const CANONICAL_SCHEMA_FILES = {
  [Topics.vehicleTelemetry]: 'vehicle-telemetry.avsc',
  [Topics.commandResults]: 'command-result.avsc',
  [Topics.deviceLinks]: 'device-link.avsc',
  [Topics.vehicleErrors]: 'vehicle-error.avsc',
  [Topics.chargingSessions]: 'charging-session.avsc',
} as const;

export type CanonicalTopic = keyof typeof CANONICAL_SCHEMA_FILES;

export function subjectOf(topic: string): string {
  return `${topic}-value`;
}

/** The Avro schema (as JSON text) of a canonical topic, read from the package's `schemas/` folder. */
export function canonicalSchema(topic: CanonicalTopic): string {
  return readFileSync(join(SCHEMAS_DIR, CANONICAL_SCHEMA_FILES[topic]), 'utf8');
}

/** An empty telemetry record: every reading unknown. */
export function emptyTelemetry(
  base: Pick<
    VehicleTelemetry,
    | 'eventId'
    | 'provider'
    | 'vehicleId'
    | 'providerVehicleId'
    | 'userId'
    | 'occurredAt'
    | 'receivedAt'
    | 'sourceEventType'
  >,
): VehicleTelemetry {
  return {
    ...base,
    isCharging: null,
    isPluggedIn: null,
    chargingState: null,
    stateOfChargePercent: null,
    rangeKm: null,
    chargePowerKw: null,
    chargeVoltageV: null,
    chargeCurrentA: null,
    energyAddedKwh: null,
    chargeLimitPercent: null,
    targetSocPercent: null,
    timeToCompleteMinutes: null,
    batteryCapacityKwh: null,
    location: null,
    odometerKm: null,
    vehicle: null,
    triggers: [],
  };
}
