import { z } from 'zod';

const isoTime = z.string().min(1);

const batteryState = z.looseObject({
  chargeThresholdMet: z.boolean().nullish(),
  isCharging: z.boolean().nullish(),
  isPlugged: z.boolean().nullish(),
  lastUpdated: isoTime.nullish(),
  range: z.number().nullish(),
  rangeUnit: z.string().nullish(),
  soc: z.number().nullish(),
});

const vehicleState = z.looseObject({
  batteryState: batteryState.nullish(),
  id: z.string().nullish(),
  location: z
    .looseObject({ lastUpdated: isoTime.nullish(), latitude: z.number(), longitude: z.number() })
    .nullish(),
  odo: z.looseObject({ lastUpdated: isoTime.nullish(), unit: z.string(), value: z.number() }).nullish(),
  state: z.string().nullish(),
  stateDescription: z.string().nullish(),
  staticAttributes: z
    .looseObject({
      country: z.string().nullish(),
      make: z.string().nullish(),
      model: z.string().nullish(),
      nickname: z.string().nullish(),
      registration: z.string().nullish(),
      vin: z.string().nullish(),
      year: z.number().int().nullish(),
    })
    .nullish(),
});

const commandResult = {
  action: z.string().min(1),
  code: z.string().nullish(),
  jobId: z.string().nullish(),
  message: z.string().nullish(),
  success: z.boolean(),
};

const vehicleStatus = {
  jobId: z.string().nullish(),
  message: z.string().nullish(),
  vehicleId: z.string().min(1),
  vehicleState: vehicleState,
};

const device = z.looseObject({
  deviceId: z.string().min(1),
  clientUserId: z.string().nullish(),
  country: z.string().nullish(),
  deviceType: z.string().nullish(),
  engineType: z.string().nullish(),
  make: z.string().nullish(),
  model: z.string().nullish(),
  nickname: z.string().nullish(),
  vin: z.string().nullish(),
  year: z.number().int().nullish(),
});

/** One schema per event type of the Telematica catalogue (the seed); unknown fields are kept. */
export const telematicaSchemas = {
  'charger.charging-command': z.looseObject({
    ...commandResult,
    type: z.literal('charger.charging-command'),
    chargerId: z.string().min(1),
  }),
  'vehicle.charging-command': z.looseObject({
    ...commandResult,
    type: z.literal('vehicle.charging-command'),
    vehicleId: z.string().min(1),
  }),
  'user.devices-connected': z.looseObject({
    type: z.literal('user.devices-connected'),
    user: z.string().min(1),
    devices: z.array(device),
    // A legacy `vehicles` key may stand beside `devices`; it is ignored, whatever its shape.
  }),
  'user.devices-disconnected': z.looseObject({
    type: z.literal('user.devices-disconnected'),
    user: z.string().min(1),
    devices: z.array(z.string().min(1)),
  }),
  'vehicle.charging-status': z.looseObject({
    ...vehicleStatus,
    type: z.literal('vehicle.charging-status'),
    currentState: z.string().min(1),
  }),
  'vehicle.plug-status': z.looseObject({
    ...vehicleStatus,
    type: z.literal('vehicle.plug-status'),
    currentState: z.string().min(1),
  }),
  'vehicle.soc': z.looseObject({
    ...vehicleStatus,
    type: z.literal('vehicle.soc'),
    currentSoc: z.number(),
    targetSoc: z.number().nullish(),
  }),
} as const;

export type TelematicaEventType = keyof typeof telematicaSchemas;

/** An event type we do not know yet: published as it is, as long as it names its type. */
export const telematicaUnknownEvent = z.looseObject({
  type: z.string().min(1),
  vehicleId: z.string().optional(),
  chargerId: z.string().optional(),
  user: z.string().optional(),
});
