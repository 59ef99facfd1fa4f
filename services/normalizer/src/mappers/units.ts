/** Unit conversions to the canonical metric units. Unknown units are refused, never assumed. */

export class UnitError extends Error {}

const KM_PER_MILE = 1.609344;

export function toKm(value: number, unit: string | null | undefined): number {
  switch ((unit ?? '').toLowerCase()) {
    case 'km':
    case 'kms':
    case 'kilometer':
    case 'kilometers':
    case 'kilometre':
    case 'kilometres':
      return value;
    case 'mi':
    case 'mile':
    case 'miles':
      return value * KM_PER_MILE;
    default:
      throw new UnitError(`unknown distance unit "${unit ?? ''}"`);
  }
}

export function toKw(value: number, unit: string | null | undefined): number {
  switch ((unit ?? 'watts').toLowerCase()) {
    case 'w':
    case 'watt':
    case 'watts':
      return value / 1000;
    case 'kw':
    case 'kilowatt':
    case 'kilowatts':
      return value;
    default:
      throw new UnitError(`unknown power unit "${unit ?? ''}"`);
  }
}

export function toKwh(value: number, unit: string | null | undefined): number {
  switch ((unit ?? 'kilowatt_hours').toLowerCase()) {
    case 'kwh':
    case 'kwhr':
    case 'kilowatt_hours':
    case 'kilowatt_hour':
    case 'kilowatt-hours':
      return value;
    case 'wh':
    case 'watt_hours':
    case 'watt_hour':
      return value / 1000;
    default:
      throw new UnitError(`unknown energy unit "${unit ?? ''}"`);
  }
}

export function toMinutes(value: number, unit: string | null | undefined): number {
  switch ((unit ?? 'minutes').toLowerCase()) {
    case 'min':
    case 'mins':
    case 'minute':
    case 'minutes':
      return value;
    case 'h':
    case 'hour':
    case 'hours':
      return value * 60;
    case 's':
    case 'second':
    case 'seconds':
      return value / 60;
    default:
      throw new UnitError(`unknown duration unit "${unit ?? ''}"`);
  }
}

/** Epoch milliseconds from a number (ms) or an ISO-8601 string; undefined when absent or unreadable. */
export function toEpochMs(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return Math.trunc(value);
  if (typeof value === 'string') {
    const ms = Date.parse(value);
    return Number.isNaN(ms) ? undefined : ms;
  }
  return undefined;
}
