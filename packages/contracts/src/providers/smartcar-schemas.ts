import { z } from 'zod';

/** Epoch milliseconds, or an ISO-8601 string: both are documented for delivery timestamps. */
const timestamp = z.union([z.number(), z.string()]);

const signalRef = z.looseObject({
  code: z.string(),
  name: z.string().optional(),
  group: z.string().optional(),
});

/** Three documented trigger shapes: `"Charge.IsCharging"`, `{code,name,group}`, `{type, signal:{...}}`. */
const trigger = z.union([
  z.string(),
  z.looseObject({ type: z.string(), signal: signalRef.optional() }),
  z.looseObject({ code: z.string() }),
]);

const signal = z.looseObject({
  code: z.string().min(1),
  name: z.string().optional(),
  group: z.string().optional(),
  body: z.unknown().optional(),
  meta: z
    .looseObject({
      oemUpdatedAt: timestamp.optional(),
      retrievedAt: timestamp.optional(),
      fetchedAt: timestamp.optional(),
    })
    .optional(),
  status: z
    .looseObject({
      value: z.string(),
      error: z.looseObject({ code: z.string().nullish(), type: z.string().nullish() }).optional(),
    })
    .optional(),
});

const vehicle = z.looseObject({
  id: z.string().min(1),
  make: z.string().nullish(),
  model: z.string().nullish(),
  year: z.number().int().nullish(),
  vin: z.string().nullish(),
});

const user = z.looseObject({ id: z.string().min(1) });

const deliveryMeta = z.looseObject({
  version: z.string().optional(),
  deliveryId: z.string().optional(),
  deliveredAt: timestamp.optional(),
  deliveryTimestamp: timestamp.optional(),
  webhookId: z.string().optional(),
  webhookName: z.string().optional(),
  signalCount: z.number().int().optional(),
  mode: z.string().optional(),
});

const common = {
  eventId: z.string().min(1),
  /** v4.0 reference: the vehicle id at the top level as well. */
  vehicleId: z.string().min(1).optional(),
  triggers: z.array(trigger).optional(),
  meta: deliveryMeta.optional(),
};

export const smartcarVehicleState = z.looseObject({
  ...common,
  eventType: z.literal('VEHICLE_STATE'),
  data: z.looseObject({
    user: user.optional(),
    vehicle: vehicle.optional(),
    signals: z.array(signal),
    triggers: z.array(trigger).optional(),
    meta: deliveryMeta.optional(),
  }),
});

const vehicleError = z.looseObject({
  type: z.string().min(1),
  code: z.string().nullish(),
  state: z.enum(['ERROR', 'RESOLVED']),
  description: z.string().nullish(),
  suggestedUserMessage: z.string().nullish(),
  docURL: z.string().nullish(),
  resolution: z.looseObject({ type: z.string().nullish() }).nullish(),
  signals: z.array(signalRef).optional(),
});

export const smartcarVehicleError = z.looseObject({
  ...common,
  eventType: z.literal('VEHICLE_ERROR'),
  data: z.looseObject({
    user: user.optional(),
    vehicle: vehicle.optional(),
    errors: z.array(vehicleError).min(1),
    meta: deliveryMeta.optional(),
  }),
});

export const smartcarVerify = z.looseObject({
  eventId: z.string().optional(),
  eventType: z.literal('VERIFY'),
  data: z.looseObject({ challenge: z.string().min(1) }),
});

/** The legacy (v2) challenge: `{"version":"2.0","webhookId":"...","eventName":"verify","payload":{"challenge":"..."}}`. */
export const smartcarLegacyVerify = z.looseObject({
  eventName: z.literal('verify'),
  payload: z.looseObject({ challenge: z.string().min(1) }),
});

/** What every other (unknown) event type must still carry to be published: an id and a type. */
export const smartcarUnknownEvent = z.looseObject({
  eventId: z.string().min(1),
  eventType: z.string().min(1),
  vehicleId: z.string().optional(),
  data: z
    .looseObject({ vehicle: z.looseObject({ id: z.string() }).optional(), user: user.optional() })
    .optional(),
});

export type SmartcarVehicleState = z.infer<typeof smartcarVehicleState>;
export type SmartcarVehicleError = z.infer<typeof smartcarVehicleError>;
