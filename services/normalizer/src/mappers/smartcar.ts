import {
  Topics,
  emptyTelemetry,
  type ChargingState,
  type SmartcarVehicleError,
  type SmartcarVehicleState,
  type VehicleError,
  type VehicleTelemetry,
} from '@ampflow/contracts';
import type { Mapped, RawEvent } from './types';
import { toEpochMs, toKm, toKw, toKwh, toMinutes } from './units';

type Body = Record<string, unknown>;

const num = (body: Body, field: string): number | undefined =>
  typeof body[field] === 'number' && Number.isFinite(body[field]) ? (body[field] as number) : undefined;
const bool = (body: Body, field: string): boolean | undefined =>
  typeof body[field] === 'boolean' ? (body[field] as boolean) : undefined;
const str = (body: Body, field: string): string | undefined =>
  typeof body[field] === 'string' ? (body[field] as string) : undefined;

const CHARGING_STATES = new Set<ChargingState>(['CHARGING', 'NOT_CHARGING', 'FULLY_CHARGED']);

/** Readings a signal contributes; each returns false when its body is not the documented shape. */
const SIGNALS: Record<string, (body: Body, out: VehicleTelemetry) => boolean> = {
  'charge-ischarging': (b, out) => set(out, 'isCharging', bool(b, 'value')),
  'charge-ischargingcableconnected': (b, out) => set(out, 'isPluggedIn', bool(b, 'value')),
  'tractionbattery-stateofcharge': (b, out) =>
    set(out, 'stateOfChargePercent', num(b, 'value') ?? num(b, 'percentage')),
  'charge-stateofcharge': (b, out) =>
    set(out, 'stateOfChargePercent', num(b, 'value') ?? num(b, 'percentage')),
  'charge-amperage': (b, out) => set(out, 'chargeCurrentA', num(b, 'value')),
  'charge-chargingcurrent': (b, out) => set(out, 'chargeCurrentA', num(b, 'value')),
  'charge-voltage': (b, out) => set(out, 'chargeVoltageV', num(b, 'value')),
  'charge-wattage': (b, out) =>
    set(
      out,
      'chargePowerKw',
      convert(num(b, 'value'), (v) => toKw(v, str(b, 'unit'))),
    ),
  'charge-energyadded': (b, out) =>
    set(
      out,
      'energyAddedKwh',
      convert(num(b, 'value'), (v) => toKwh(v, str(b, 'unit'))),
    ),
  'charge-timetocomplete': (b, out) =>
    set(
      out,
      'timeToCompleteMinutes',
      convert(num(b, 'value'), (v) => toMinutes(v, str(b, 'unit'))),
    ),
  'charge-chargelimits': (b, out) =>
    out.chargeLimitPercent !== null || set(out, 'chargeLimitPercent', num(b, 'activeLimit')),
  'charge-activelimit': (b, out) => set(out, 'chargeLimitPercent', num(b, 'value')),
  'charge-detailedchargingstatus': (b, out) => {
    const value = str(b, 'value');
    if (value === undefined) return false;
    out.chargingState = CHARGING_STATES.has(value as ChargingState) ? (value as ChargingState) : 'UNKNOWN';
    return true;
  },
  'tractionbattery-range': (b, out) =>
    set(
      out,
      'rangeKm',
      convert(num(b, 'value'), (v) => toKm(v, str(b, 'unit'))),
    ),
  'tractionbattery-nominalcapacity': (b, out) => set(out, 'batteryCapacityKwh', num(b, 'capacity')),
  'location-preciselocation': (b, out) => {
    const latitude = num(b, 'latitude');
    const longitude = num(b, 'longitude');
    if (latitude === undefined || longitude === undefined) return false;
    out.location = { latitude, longitude };
    return true;
  },
  'odometer-traveleddistance': (b, out) =>
    set(
      out,
      'odometerKm',
      convert(num(b, 'value'), (v) => toKm(v, str(b, 'unit') ?? 'km')),
    ),
};

function set<K extends keyof VehicleTelemetry>(
  out: VehicleTelemetry,
  field: K,
  value: VehicleTelemetry[K] | undefined,
) {
  if (value === undefined) return false;
  out[field] = value;
  return true;
}

function convert(value: number | undefined, fn: (v: number) => number): number | undefined {
  return value === undefined ? undefined : fn(value);
}

/** Trigger names in the three documented shapes, as `Group.Name` (or `FIRST_DELIVERY`). */
function triggerNames(triggers: unknown[] | undefined): string[] {
  return (triggers ?? []).map((t) => {
    if (typeof t === 'string') return t;
    const trigger = t as {
      type?: string;
      code?: string;
      name?: string;
      group?: string;
      signal?: { code?: string; name?: string; group?: string };
    };
    const signal = trigger.signal ?? trigger;
    if (signal.group && signal.name) return `${signal.group}.${signal.name}`;
    return signal.code ?? trigger.type ?? 'UNKNOWN';
  });
}

export function canonicalEventId(raw: Pick<RawEvent, 'provider' | 'providerEventId'>): string {
  return `${raw.provider}:${raw.providerEventId}`;
}

export function mapSmartcarVehicleState(
  raw: RawEvent,
  event: SmartcarVehicleState,
): Mapped<VehicleTelemetry> {
  const providerVehicleId = event.vehicleId ?? event.data.vehicle?.id;
  if (!providerVehicleId) throw new Error('VEHICLE_STATE names no vehicle');
  const vehicleId = `smartcar:${providerVehicleId}`;
  const out = emptyTelemetry({
    eventId: canonicalEventId(raw),
    provider: 'smartcar',
    vehicleId,
    providerVehicleId,
    userId: event.data.user ? `smartcar:${event.data.user.id}` : null,
    occurredAt: raw.receivedAt,
    receivedAt: raw.receivedAt,
    sourceEventType: event.eventType,
  });
  let failedSignals = 0;
  const unknownSignals: string[] = [];
  let newest: number | undefined;
  for (const signal of event.data.signals) {
    if (signal.status?.value === 'ERROR') {
      failedSignals += 1;
      continue;
    }
    const apply = SIGNALS[signal.code];
    if (!apply) {
      unknownSignals.push(signal.code);
      continue;
    }
    if (typeof signal.body !== 'object' || signal.body === null || !apply(signal.body as Body, out)) {
      failedSignals += 1;
      continue;
    }
    const at = toEpochMs(signal.meta?.oemUpdatedAt);
    if (at !== undefined && (newest === undefined || at > newest)) newest = at;
  }
  out.occurredAt = newest ?? raw.receivedAt;
  const vehicle = event.data.vehicle;
  if (vehicle) {
    out.vehicle = {
      make: vehicle.make ?? null,
      model: vehicle.model ?? null,
      year: vehicle.year ?? null,
      vin: vehicle.vin ?? null,
      nickname: null,
    };
  }
  out.triggers = triggerNames(event.data.triggers ?? event.triggers);
  return { topic: Topics.vehicleTelemetry, key: vehicleId, value: out, failedSignals, unknownSignals };
}

export function mapSmartcarVehicleError(raw: RawEvent, event: SmartcarVehicleError): Mapped<VehicleError> {
  const providerVehicleId = event.vehicleId ?? event.data.vehicle?.id;
  if (!providerVehicleId) throw new Error('VEHICLE_ERROR names no vehicle');
  const vehicleId = `smartcar:${providerVehicleId}`;
  const delivered = toEpochMs(event.meta?.deliveredAt) ?? toEpochMs(event.data.meta?.deliveryTimestamp);
  return {
    topic: Topics.vehicleErrors,
    key: vehicleId,
    value: {
      eventId: canonicalEventId(raw),
      provider: 'smartcar',
      vehicleId,
      userId: event.data.user ? `smartcar:${event.data.user.id}` : null,
      occurredAt: delivered ?? raw.receivedAt,
      errors: event.data.errors.map((e) => ({
        type: e.type,
        code: e.code ?? null,
        state: e.state,
        description: e.description ?? null,
        suggestedUserMessage: e.suggestedUserMessage ?? null,
        resolution: e.resolution?.type ?? null,
        signals: (e.signals ?? []).map((s) => (s.group && s.name ? `${s.group}.${s.name}` : s.code)),
      })),
    },
    failedSignals: 0,
    unknownSignals: [],
  };
}
