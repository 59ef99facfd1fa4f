import {
  emptyTelemetry,
  type ChargingSession,
  type DeviceLink,
  type VehicleTelemetry,
} from '@ampflow/contracts';

let seq = 0;
const BASE = Date.parse('2025-08-05T08:00:00.000Z');

export function session(
  vehicleId: string,
  change: ChargingSession['change'],
  fields: Partial<ChargingSession> = {},
): ChargingSession {
  const ended = change === 'ENDED';
  return {
    sessionId: `sess-${vehicleId}`,
    vehicleId,
    provider: vehicleId.split(':')[0]!,
    userId: null,
    change,
    status: ended ? 'COMPLETED' : 'ACTIVE',
    startedAt: BASE,
    endedAt: ended ? BASE + 3_600_000 : null,
    durationSeconds: ended ? 3_600 : null,
    socStartPercent: 30,
    socEndPercent: ended ? 80 : null,
    energyAddedKwh: ended ? 24.5 : null,
    energySource: 'REPORTED',
    maxPowerKw: 11,
    location: null,
    endReason: ended ? 'CHARGING_STOPPED' : null,
    eventCount: ended ? 5 : 1,
    version: change === 'STARTED' ? 1 : change === 'UPDATED' ? 2 : 3,
    ...fields,
  };
}

export function telemetry(
  vehicleId: string,
  minutes: number,
  fields: Partial<VehicleTelemetry> = {},
): VehicleTelemetry {
  seq += 1;
  const provider = vehicleId.split(':')[0]!;
  return {
    ...emptyTelemetry({
      eventId: `${vehicleId}:evt-${seq}-${minutes}`,
      provider,
      vehicleId,
      providerVehicleId: vehicleId.split(':')[1]!,
      userId: null,
      occurredAt: BASE + minutes * 60_000,
      receivedAt: BASE + minutes * 60_000 + 500,
      sourceEventType: 'VEHICLE_STATE',
    }),
    ...fields,
  };
}

export function deviceLink(
  userId: string,
  vehicleId: string,
  vehicle: { make: string; model: string; year: number; nickname?: string },
): DeviceLink {
  seq += 1;
  return {
    eventId: `link-${seq}`,
    provider: vehicleId.split(':')[0]!,
    userId,
    change: 'CONNECTED',
    devices: [
      {
        deviceId: vehicleId.split(':')[1]!,
        vehicleId,
        deviceType: 'VEHICLE',
        make: vehicle.make,
        model: vehicle.model,
        year: vehicle.year,
        vin: null,
        nickname: vehicle.nickname ?? null,
        country: null,
        engineType: null,
      },
    ],
    receivedAt: BASE,
  };
}
