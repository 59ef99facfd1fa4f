import { emptyTelemetry, type DeviceLink, type VehicleTelemetry } from '@ampflow/contracts';
import { fromCommandResult, fromDeviceLink, fromTelemetry, type CustomerEvent } from './customer-events';
import {
  enrich,
  mergeVehicle,
  observationsOf,
  type KnownVehicle,
  type VehicleObservation,
} from './vehicle-directory';

const VIN = 'WVWZZZ1KZAW000001';

const observation = (overrides: Partial<VehicleObservation> = {}): VehicleObservation => ({
  vehicleId: 'v1',
  observedAt: 100,
  ...overrides,
});

function aKnownVehicle(overrides: Partial<KnownVehicle> = {}): KnownVehicle {
  return {
    vehicleId: 'v1',
    make: 'VW',
    model: 'ID.3',
    year: 2023,
    nickname: 'Blue',
    userId: 'u1',
    observedAt: { make: 100, model: 100, year: 100, nickname: 100, userId: 100 },
    ...overrides,
  };
}

function aTelemetry(overrides: Partial<VehicleTelemetry> = {}): VehicleTelemetry {
  return {
    ...emptyTelemetry({
      eventId: 'e1',
      provider: 'smartcar',
      vehicleId: 'v1',
      providerVehicleId: 'p1',
      userId: null,
      occurredAt: 50,
      receivedAt: 200,
      sourceEventType: 'VEHICLE_STATE',
    }),
    ...overrides,
  };
}

function aDeviceLink(overrides: Partial<DeviceLink> = {}): DeviceLink {
  return {
    eventId: 'l1',
    provider: 'telematica',
    userId: 'u9',
    change: 'CONNECTED',
    receivedAt: 300,
    devices: [
      {
        deviceId: 'd1',
        vehicleId: 'v1',
        deviceType: null,
        make: 'VW',
        model: null,
        year: null,
        vin: VIN,
        nickname: 'Blue',
        country: null,
        engineType: null,
      },
      {
        deviceId: 'd2',
        vehicleId: 'v2',
        deviceType: null,
        make: null,
        model: null,
        year: null,
        vin: null,
        nickname: null,
        country: null,
        engineType: null,
      },
    ],
    ...overrides,
  };
}

describe('mergeVehicle', () => {
  it('starts from nothing: what is said is known, the rest null', () => {
    expect(mergeVehicle(null, observation({ make: 'VW', year: 2023, model: null }))).toEqual({
      vehicleId: 'v1',
      make: 'VW',
      model: null,
      year: 2023,
      nickname: null,
      userId: null,
      observedAt: { make: 100, year: 100 },
    });
  });

  it.each([
    ['a newer value wins', { nickname: 'Red', observedAt: 200 }, { nickname: 'Red' }],
    ['an equally new value wins', { nickname: 'Red', observedAt: 100 }, { nickname: 'Red' }],
    ['an older value loses', { nickname: 'Red', observedAt: 50 }, { nickname: 'Blue' }],
    ['null never erases', { nickname: null, make: null, observedAt: 200 }, { nickname: 'Blue', make: 'VW' }],
    ['a newer user id replaces the owner', { userId: 'u2', observedAt: 200 }, { userId: 'u2' }],
  ] as const)('%s', (_c, obs, expected) => {
    expect(mergeVehicle(aKnownVehicle(), observation(obs))).toMatchObject(expected);
  });

  it('an older observation still fills a field that is unknown', () => {
    const known = aKnownVehicle({ nickname: null, observedAt: { make: 100 } });
    expect(mergeVehicle(known, observation({ nickname: 'Old', observedAt: 10 }))).toMatchObject({
      nickname: 'Old',
    });
  });

  it('keeps times per field: an observation newer than one field but older than another', () => {
    const known = aKnownVehicle({ observedAt: { make: 100, nickname: 300 } });
    const merged = mergeVehicle(
      known,
      observation({ make: 'Volkswagen', nickname: 'Stale', observedAt: 200 }),
    );
    expect(merged).toMatchObject({ make: 'Volkswagen', nickname: 'Blue' });
    expect(merged.observedAt).toMatchObject({ make: 200, nickname: 300 });
  });

  it('returns the known object itself when nothing changes, and never mutates it', () => {
    const known = aKnownVehicle();
    const frozen = JSON.stringify(known);
    expect(mergeVehicle(known, observation({ make: 'VW', observedAt: 100 }))).toBe(known);
    mergeVehicle(known, observation({ make: 'Other', observedAt: 500 }));
    expect(JSON.stringify(known)).toBe(frozen);
  });
});

describe('observationsOf', () => {
  it('telemetry: the provider vehicle object and user id at our receive time, never the VIN', () => {
    const obs = observationsOf({
      kind: 'telemetry',
      record: aTelemetry({
        userId: 'u1',
        vehicle: { make: 'VW', model: 'ID.3', year: 2023, vin: VIN, nickname: null },
      }),
    });
    expect(obs).toEqual([
      {
        vehicleId: 'v1',
        observedAt: 200,
        make: 'VW',
        model: 'ID.3',
        year: 2023,
        nickname: null,
        userId: 'u1',
      },
    ]);
    const merged = obs.reduce<KnownVehicle | null>((k, o) => mergeVehicle(k, o), null);
    expect(JSON.stringify(merged)).not.toContain(VIN);
  });

  it('device link: one observation per device with the linking user, also on disconnect', () => {
    const obs = observationsOf({ kind: 'device-link', record: aDeviceLink({ change: 'DISCONNECTED' }) });
    expect(obs.map((o) => [o.vehicleId, o.userId, o.observedAt])).toEqual([
      ['v1', 'u9', 300],
      ['v2', 'u9', 300],
    ]);
    expect(JSON.stringify(obs)).not.toContain(VIN);
  });

  it('sessions and errors tell only a user id, when they have one; commands nothing', () => {
    const session = { vehicleId: 'v1', userId: 'u1' } as never;
    expect(observationsOf({ kind: 'session', record: session, receivedAt: 9 })).toEqual([
      { vehicleId: 'v1', observedAt: 9, userId: 'u1' },
    ]);
    expect(
      observationsOf({ kind: 'error', record: { vehicleId: 'v1', userId: null } as never, receivedAt: 9 }),
    ).toEqual([]);
    expect(observationsOf({ kind: 'command', record: {} as never })).toEqual([]);
  });
});

describe('enrich', () => {
  const known = new Map([['v1', aKnownVehicle()]]);

  it('fills the vehicle block and a missing user id, in data and routing', () => {
    const event = enrich(fromTelemetry(aTelemetry()), known) as CustomerEvent<'vehicle.telemetry'>;
    expect(event.data.vehicle).toEqual({ make: 'VW', model: 'ID.3', year: 2023, nickname: 'Blue' });
    expect(event.data.userId).toBe('u1');
    expect(event.routing.userId).toBe('u1');
  });

  it("keeps the record's own user id over the directory's", () => {
    const event = enrich(
      fromTelemetry(aTelemetry({ userId: 'u-own' })),
      known,
    ) as CustomerEvent<'vehicle.telemetry'>;
    expect(event.data.userId).toBe('u-own');
  });

  it('an unknown vehicle is still an event, with nulls', () => {
    const event = enrich(
      fromTelemetry(aTelemetry({ vehicleId: 'v-unknown' })),
      known,
    ) as CustomerEvent<'vehicle.telemetry'>;
    expect(event.data.vehicle).toEqual({ make: null, model: null, year: null, nickname: null });
    expect(event.data.userId).toBeNull();
    expect(event.id).toBe(fromTelemetry(aTelemetry({ vehicleId: 'v-unknown' })).id);
  });

  it('device events: fills only what the link left null, per device', () => {
    const event = enrich(fromDeviceLink(aDeviceLink()), known) as CustomerEvent<'device.connected'>;
    expect(event.data.devices[0]).toMatchObject({ make: 'VW', model: 'ID.3', year: 2023, nickname: 'Blue' });
    expect(event.data.devices[1]).toMatchObject({ make: null, model: null, year: null, nickname: null });
  });

  it('a charger command is left as it is; a vehicle command is enriched', () => {
    const base = {
      eventId: 'c1',
      provider: 'telematica',
      action: 'STOP_CHARGING' as const,
      providerAction: 'STOP',
      success: false,
      code: 'X',
      message: null,
      jobId: null,
      receivedAt: 1,
    };
    const charger = fromCommandResult({ ...base, targetType: 'CHARGER', targetId: 'c' });
    expect(enrich(charger, known)).toBe(charger);
    const vehicle = enrich(fromCommandResult({ ...base, targetType: 'VEHICLE', targetId: 'v1' }), known);
    expect(vehicle.data).toMatchObject({ userId: 'u1', vehicle: { make: 'VW', nickname: 'Blue' } });
  });
});
