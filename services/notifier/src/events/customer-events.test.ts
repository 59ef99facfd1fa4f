import {
  emptyTelemetry,
  type ChargingSession,
  type CommandResult,
  type DeviceLink,
  type VehicleError,
  type VehicleTelemetry,
} from '@ampflow/contracts';
import {
  CUSTOMER_EVENT_TYPES,
  fromChargingSession,
  fromCommandResult,
  fromDeviceLink,
  fromPlugChange,
  fromTelemetry,
  fromTelemetryWithPlugState,
  fromVehicleError,
  toBody,
  type CustomerEvent,
} from './customer-events';
import { messageId } from '@ampflow/contracts';

const T0 = Date.parse('2026-11-26T10:00:00.000Z');
const VIN = 'WVWZZZ1KZAW000001';

function aTelemetry(overrides: Partial<VehicleTelemetry> = {}): VehicleTelemetry {
  return {
    ...emptyTelemetry({
      eventId: 'evt-tel-1',
      provider: 'smartcar',
      vehicleId: 'smartcar:veh-1',
      providerVehicleId: 'veh-1',
      userId: 'smartcar:user-1',
      occurredAt: T0,
      receivedAt: T0 + 1_500,
      sourceEventType: 'VEHICLE_STATE',
    }),
    isCharging: true,
    isPluggedIn: true,
    chargingState: 'CHARGING',
    stateOfChargePercent: 42,
    chargePowerKw: 11,
    vehicle: { make: 'VW', model: 'ID.3', year: 2023, vin: VIN, nickname: 'Blue' },
    triggers: ['Charge.IsCharging'],
    ...overrides,
  };
}

function aSession(overrides: Partial<ChargingSession> = {}): ChargingSession {
  return {
    sessionId: 'ses-1',
    vehicleId: 'smartcar:veh-1',
    provider: 'smartcar',
    userId: 'smartcar:user-1',
    change: 'STARTED',
    status: 'ACTIVE',
    startedAt: T0,
    endedAt: null,
    durationSeconds: null,
    socStartPercent: 20,
    socEndPercent: null,
    energyAddedKwh: null,
    energySource: 'UNKNOWN',
    maxPowerKw: 11,
    location: { latitude: 52.5, longitude: 13.4 },
    endReason: null,
    eventCount: 1,
    version: 1,
    ...overrides,
  };
}

function aCommandResult(overrides: Partial<CommandResult> = {}): CommandResult {
  return {
    eventId: 'evt-cmd-1',
    provider: 'telematica',
    targetType: 'VEHICLE',
    targetId: 'telematica:veh-9',
    action: 'START_CHARGING',
    providerAction: 'START',
    success: true,
    code: null,
    message: null,
    jobId: 'job-1',
    receivedAt: T0,
    ...overrides,
  };
}

function aDeviceLink(overrides: Partial<DeviceLink> = {}): DeviceLink {
  return {
    eventId: 'evt-link-1',
    provider: 'telematica',
    userId: 'telematica:user-9',
    change: 'CONNECTED',
    devices: [
      {
        deviceId: 'dev-1',
        vehicleId: 'telematica:veh-9',
        deviceType: 'vehicle',
        make: 'Tesla',
        model: 'Model 3',
        year: 2022,
        vin: VIN,
        nickname: null,
        country: 'DE',
        engineType: 'BEV',
      },
    ],
    receivedAt: T0,
    ...overrides,
  };
}

function aVehicleError(overrides: Partial<VehicleError> = {}): VehicleError {
  return {
    eventId: 'evt-err-1',
    provider: 'smartcar',
    vehicleId: 'smartcar:veh-1',
    userId: null,
    occurredAt: T0,
    errors: [
      {
        type: 'VEHICLE_STATE',
        code: 'ASLEEP',
        state: 'ERROR',
        description: 'Vehicle is asleep',
        suggestedUserMessage: null,
        resolution: 'RETRY_LATER',
        signals: ['charge-ischarging'],
      },
    ],
    ...overrides,
  };
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const nullVehicle = { make: null, model: null, year: null, nickname: null };

describe('customer events', () => {
  it.each([
    ['STARTED', 'charging_session.started', aSession(), T0],
    [
      'UPDATED',
      'charging_session.updated',
      aSession({ change: 'UPDATED', version: 2, energyAddedKwh: 3.2, energySource: 'REPORTED' }),
      T0 + 60_000,
    ],
    [
      'ENDED',
      'charging_session.ended',
      aSession({
        change: 'ENDED',
        status: 'COMPLETED',
        version: 3,
        endedAt: T0 + 3_600_000,
        durationSeconds: 3600,
        endReason: 'UNPLUGGED',
      }),
      T0 + 3_600_000,
    ],
  ] as const)(
    'a session %s is %s with the id of (sessionId:version, type)',
    (_c, type, session, timestampMs) => {
      const event = fromChargingSession(session, T0 + 60_000);
      expect(event.type).toBe(type);
      expect(event.timestamp).toBe(new Date(timestampMs).toISOString());
      expect(event.id).toBe(messageId(`ses-1:${session.version}`, type));
      expect(event.data).toMatchObject({
        sessionId: 'ses-1',
        vehicleId: 'smartcar:veh-1',
        startedAt: '2026-11-26T10:00:00.000Z',
        version: session.version,
        vehicle: nullVehicle,
      });
      expect(event.data).not.toHaveProperty('eventCount');
      expect(event.routing).toEqual({
        provider: 'smartcar',
        vehicleIds: ['smartcar:veh-1'],
        userId: 'smartcar:user-1',
        sourceId: `ses-1:${session.version}`,
      });
    },
  );

  it('an ended session carries its end as ISO and its figures', () => {
    const event = fromChargingSession(
      aSession({
        change: 'ENDED',
        status: 'COMPLETED',
        endedAt: T0 + 5_000,
        durationSeconds: 5,
        endReason: 'FULLY_CHARGED',
      }),
    );
    expect(event.data).toMatchObject({
      endedAt: '2026-11-26T10:00:05.000Z',
      durationSeconds: 5,
      endReason: 'FULLY_CHARGED',
    });
  });

  it('vehicle.telemetry keeps readings in metric units, ISO times, and no VIN', () => {
    const event = fromTelemetry(aTelemetry());
    expect(event).toMatchObject({
      id: messageId('evt-tel-1', 'vehicle.telemetry'),
      type: 'vehicle.telemetry',
      timestamp: '2026-11-26T10:00:00.000Z',
      data: {
        vehicleId: 'smartcar:veh-1',
        providerVehicleId: 'veh-1',
        occurredAt: '2026-11-26T10:00:00.000Z',
        stateOfChargePercent: 42,
        chargePowerKw: 11,
        rangeKm: null,
        triggers: ['Charge.IsCharging'],
        vehicle: nullVehicle,
      },
    });
    expect(JSON.stringify(toBody(event))).not.toContain(VIN);
    expect(event.data).not.toHaveProperty('receivedAt');
  });

  it('a plug change gets its own id, distinct from the telemetry of the same reading', () => {
    const reading = aTelemetry({ isPluggedIn: false });
    const event = fromPlugChange(reading, 'vehicle.unplugged');
    expect(event.id).toBe(messageId('evt-tel-1', 'vehicle.unplugged'));
    expect(event.id).not.toBe(fromTelemetry(reading).id);
    expect(event.data).toEqual({
      vehicleId: 'smartcar:veh-1',
      provider: 'smartcar',
      userId: 'smartcar:user-1',
      isPluggedIn: false,
      occurredAt: '2026-11-26T10:00:00.000Z',
      chargingState: 'CHARGING',
      stateOfChargePercent: 42,
      vehicle: nullVehicle,
    });
  });

  it('a reading yields telemetry plus a plug event when it flips the plug state, and the state to keep', () => {
    const previous = { isPluggedIn: false, occurredAt: T0 - 60_000, eventId: 'evt-0' };
    const flip = fromTelemetryWithPlugState(aTelemetry(), previous);
    expect(flip.events.map((e) => e.type)).toEqual(['vehicle.telemetry', 'vehicle.plugged_in']);
    expect(flip.plugState).toEqual({ isPluggedIn: true, occurredAt: T0, eventId: 'evt-tel-1' });
    const late = fromTelemetryWithPlugState(aTelemetry({ occurredAt: T0 - 120_000 }), previous);
    expect(late.events.map((e) => e.type)).toEqual(['vehicle.telemetry']);
    expect(late.plugState).toBe(previous);
  });

  it.each([
    ['a vehicle', aCommandResult(), ['telematica:veh-9'], nullVehicle],
    ['a charger', aCommandResult({ targetType: 'CHARGER', targetId: 'telematica:chg-1' }), [], null],
  ] as const)('command.result for %s', (_c, result, vehicleIds, vehicle) => {
    const event = fromCommandResult(result);
    expect(event.type).toBe('command.result');
    expect(event.timestamp).toBe('2026-11-26T10:00:00.000Z');
    expect(event.routing.vehicleIds).toEqual(vehicleIds);
    expect(event.data.vehicle).toEqual(vehicle);
    expect(event.data).toMatchObject({
      action: 'START_CHARGING',
      success: true,
      jobId: 'job-1',
      receivedAt: '2026-11-26T10:00:00.000Z',
    });
  });

  it.each([
    ['CONNECTED', 'device.connected'],
    ['DISCONNECTED', 'device.disconnected'],
  ] as const)('a device link %s is %s, devices without VIN', (change, type) => {
    const event = fromDeviceLink(aDeviceLink({ change }));
    expect(event.type).toBe(type);
    expect(event.id).toBe(messageId('evt-link-1', type));
    expect(event.data.userId).toBe('telematica:user-9');
    expect(event.data.devices).toEqual([
      {
        deviceId: 'dev-1',
        vehicleId: 'telematica:veh-9',
        deviceType: 'vehicle',
        make: 'Tesla',
        model: 'Model 3',
        year: 2022,
        nickname: null,
        country: 'DE',
        engineType: 'BEV',
      },
    ]);
    expect(JSON.stringify(toBody(event))).not.toContain(VIN);
    expect(event.routing).toMatchObject({ vehicleIds: ['telematica:veh-9'], userId: 'telematica:user-9' });
  });

  it('vehicle.error keeps every error item', () => {
    const event = fromVehicleError(aVehicleError());
    expect(event).toMatchObject({
      type: 'vehicle.error',
      timestamp: '2026-11-26T10:00:00.000Z',
      data: {
        vehicleId: 'smartcar:veh-1',
        userId: null,
        errors: [
          {
            type: 'VEHICLE_STATE',
            code: 'ASLEEP',
            state: 'ERROR',
            resolution: 'RETRY_LATER',
            signals: ['charge-ischarging'],
          },
        ],
      },
    });
  });

  it('every mapper yields a contract type, an ISO timestamp and a body of exactly type, timestamp, data', () => {
    const events: CustomerEvent[] = [
      fromChargingSession(aSession()),
      fromTelemetry(aTelemetry()),
      fromPlugChange(aTelemetry(), 'vehicle.plugged_in'),
      fromCommandResult(aCommandResult()),
      fromDeviceLink(aDeviceLink()),
      fromVehicleError(aVehicleError()),
    ];
    for (const event of events) {
      expect(CUSTOMER_EVENT_TYPES).toContain(event.type);
      expect(event.timestamp).toMatch(ISO);
      expect(Object.keys(toBody(event))).toEqual(['type', 'timestamp', 'data']);
      // Data keys are camelCase.
      expect(Object.keys(event.data).every((k) => /^[a-z][A-Za-z0-9]*$/.test(k))).toBe(true);
    }
  });
});
