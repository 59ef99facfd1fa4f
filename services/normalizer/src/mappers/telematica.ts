import { z } from 'zod';
import {
  Topics,
  emptyTelemetry,
  telematicaSchemas,
  type ChargingState,
  type CommandResult,
  type DeviceLink,
  type VehicleTelemetry,
} from '@ampflow/contracts';
import { canonicalEventId } from './smartcar';
import type { Mapped, RawEvent } from './types';
import { toEpochMs, toKm } from './units';

type StatusEvent = z.infer<
  (typeof telematicaSchemas)['vehicle.charging-status' | 'vehicle.plug-status' | 'vehicle.soc']
>;

/** `currentState` strings: those seen in the catalogue and their documented opposites; others stay unknown. */
const CHARGING_STATE: Record<string, { isCharging: boolean; state: ChargingState }> = {
  charging: { isCharging: true, state: 'CHARGING' },
  notcharging: { isCharging: false, state: 'NOT_CHARGING' },
  idle: { isCharging: false, state: 'NOT_CHARGING' },
  stopped: { isCharging: false, state: 'NOT_CHARGING' },
  complete: { isCharging: false, state: 'FULLY_CHARGED' },
  completed: { isCharging: false, state: 'FULLY_CHARGED' },
  fullycharged: { isCharging: false, state: 'FULLY_CHARGED' },
  full: { isCharging: false, state: 'FULLY_CHARGED' },
};
const PLUG_STATE: Record<string, boolean> = {
  plugged: true,
  pluggedin: true,
  unplugged: false,
  notplugged: false,
};

const normalise = (s: string) => s.replace(/[\s_-]/g, '').toLowerCase();

export function mapTelematicaStatus(raw: RawEvent, event: StatusEvent): Mapped<VehicleTelemetry> {
  const vehicleId = `telematica:${event.vehicleId}`;
  const state = event.vehicleState;
  const battery = state.batteryState;
  const out = emptyTelemetry({
    eventId: canonicalEventId(raw),
    provider: 'telematica',
    vehicleId,
    providerVehicleId: event.vehicleId,
    userId: null,
    occurredAt: toEpochMs(battery?.lastUpdated) ?? raw.receivedAt,
    receivedAt: raw.receivedAt,
    sourceEventType: event.type,
  });
  out.isCharging = battery?.isCharging ?? null;
  out.isPluggedIn = battery?.isPlugged ?? null;
  out.stateOfChargePercent = battery?.soc ?? null;
  if (battery?.range !== null && battery?.range !== undefined)
    out.rangeKm = toKm(battery.range, battery.rangeUnit);

  if (event.type === 'vehicle.charging-status') {
    const known = CHARGING_STATE[normalise(event.currentState)];
    out.chargingState = known?.state ?? 'UNKNOWN';
    if (known) out.isCharging = known.isCharging;
  } else if (event.type === 'vehicle.plug-status') {
    const plugged = PLUG_STATE[normalise(event.currentState)];
    if (plugged !== undefined) out.isPluggedIn = plugged;
  } else {
    // The SOC the event was triggered by is the reading; the battery snapshot may be older.
    out.stateOfChargePercent = event.currentSoc;
    out.targetSocPercent = event.targetSoc ?? null;
  }
  if (state.location)
    out.location = { latitude: state.location.latitude, longitude: state.location.longitude };
  if (state.odo) out.odometerKm = toKm(state.odo.value, state.odo.unit);
  const attributes = state.staticAttributes;
  if (attributes) {
    out.vehicle = {
      make: attributes.make ?? null,
      model: attributes.model ?? null,
      year: attributes.year ?? null,
      vin: attributes.vin ?? null,
      nickname: attributes.nickname ?? null,
    };
  }
  out.triggers = [event.type];
  return { topic: Topics.vehicleTelemetry, key: vehicleId, value: out, failedSignals: 0, unknownSignals: [] };
}

function commandAction(action: string): CommandResult['action'] {
  if (/-start$/.test(action)) return 'START_CHARGING';
  if (/-stop$/.test(action)) return 'STOP_CHARGING';
  return 'UNKNOWN';
}

export function mapTelematicaCommand(
  raw: RawEvent,
  event: z.infer<(typeof telematicaSchemas)['vehicle.charging-command' | 'charger.charging-command']>,
): Mapped<CommandResult> {
  const charger = event.type === 'charger.charging-command';
  const targetId = `telematica:${charger ? event.chargerId : event.vehicleId}`;
  return {
    topic: Topics.commandResults,
    key: targetId,
    value: {
      eventId: canonicalEventId(raw),
      provider: 'telematica',
      targetType: charger ? 'CHARGER' : 'VEHICLE',
      targetId,
      action: commandAction(event.action),
      providerAction: event.action,
      success: event.success,
      code: event.code ?? null,
      message: event.message ?? null,
      jobId: event.jobId ?? null,
      receivedAt: raw.receivedAt,
    },
    failedSignals: 0,
    unknownSignals: [],
  };
}

export function mapTelematicaDevices(
  raw: RawEvent,
  event: z.infer<(typeof telematicaSchemas)['user.devices-connected' | 'user.devices-disconnected']>,
): Mapped<DeviceLink> {
  const userId = `telematica:${event.user}`;
  const devices =
    event.type === 'user.devices-connected'
      ? event.devices.map((d) => ({
          deviceId: d.deviceId,
          vehicleId: `telematica:${d.deviceId}`,
          deviceType: d.deviceType ?? null,
          make: d.make ?? null,
          model: d.model ?? null,
          year: d.year ?? null,
          vin: d.vin ?? null,
          nickname: d.nickname ?? null,
          country: d.country ?? null,
          engineType: d.engineType ?? null,
        }))
      : event.devices.map((deviceId) => ({
          deviceId,
          vehicleId: `telematica:${deviceId}`,
          deviceType: null,
          make: null,
          model: null,
          year: null,
          vin: null,
          nickname: null,
          country: null,
          engineType: null,
        }));
  return {
    topic: Topics.deviceLinks,
    key: userId,
    value: {
      eventId: canonicalEventId(raw),
      provider: 'telematica',
      userId,
      change: event.type === 'user.devices-connected' ? 'CONNECTED' : 'DISCONNECTED',
      devices,
      receivedAt: raw.receivedAt,
    },
    failedSignals: 0,
    unknownSignals: [],
  };
}
