import type { z } from 'zod';
import {
  parsePayload,
  smartcarVehicleError,
  smartcarVehicleState,
  telematicaSchemas,
  type TelematicaEventType,
} from '@ampflow/contracts';
import { ValidationError } from '@ampflow/runtime';
import { mapSmartcarVehicleError, mapSmartcarVehicleState } from './smartcar';
import { mapTelematicaCommand, mapTelematicaDevices, mapTelematicaStatus } from './telematica';
import type { Mapped, RawEvent } from './types';
import { UnitError } from './units';

export type { Mapped, RawEvent } from './types';

function parse<S extends z.ZodType>(schema: S, body: unknown, what: string): z.infer<S> {
  const result = parsePayload(schema, body, what);
  if (result.ok) return result.value;
  throw new ValidationError('schema_mismatch', result.problem);
}

/**
 * Maps one raw provider event to its canonical record. Pure: the same input always gives the same output.
 * Throws a {@link ValidationError} (never retried; the record is dead-lettered) when it cannot be mapped.
 */
export function mapRawEvent(raw: RawEvent): Mapped {
  try {
    if (raw.provider === 'smartcar') {
      if (raw.eventType === 'VEHICLE_STATE')
        return mapSmartcarVehicleState(raw, parse(smartcarVehicleState, raw.body, 'VEHICLE_STATE'));
      if (raw.eventType === 'VEHICLE_ERROR')
        return mapSmartcarVehicleError(raw, parse(smartcarVehicleError, raw.body, 'VEHICLE_ERROR'));
    } else if (raw.provider === 'telematica' && Object.hasOwn(telematicaSchemas, raw.eventType)) {
      const type = raw.eventType as TelematicaEventType;
      const event = parse(telematicaSchemas[type], raw.body, type);
      switch (event.type) {
        case 'vehicle.charging-status':
        case 'vehicle.plug-status':
        case 'vehicle.soc':
          return mapTelematicaStatus(raw, event);
        case 'vehicle.charging-command':
        case 'charger.charging-command':
          return mapTelematicaCommand(raw, event);
        case 'user.devices-connected':
        case 'user.devices-disconnected':
          return mapTelematicaDevices(raw, event);
      }
    } else if (raw.provider !== 'telematica') {
      throw new ValidationError('unknown_provider', `unknown provider "${String(raw.provider)}"`);
    }
  } catch (err) {
    if (err instanceof ValidationError) throw err;
    if (err instanceof UnitError) throw new ValidationError('unknown_unit', err.message);
    throw new ValidationError('unmappable', err instanceof Error ? err.message : String(err));
  }
  throw new ValidationError(
    'unknown_event_type',
    `no mapping for ${raw.provider} event type "${raw.eventType}"`,
  );
}
