import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Type } from 'avsc';
import { canonicalSchema, type CanonicalTopic } from '@ampflow/contracts';
import { AppError } from '@ampflow/runtime';
import { fixtureJson, fixtureNames } from '@ampflow/testing';
import { mapRawEvent, type RawEvent } from './index';

const RECEIVED_AT = Date.parse('2025-08-05T06:00:00.000Z');
const GOLDEN_DIR = join(__dirname, '..', '..', 'golden');

function rawFrom(name: string, overrides: Partial<RawEvent> = {}): RawEvent {
  const provider = name.startsWith('smartcar/') ? 'smartcar' : 'telematica';
  const body = fixtureJson<Record<string, string>>(name);
  return {
    provider,
    providerEventId: provider === 'smartcar' ? body.eventId! : 'msg_golden',
    eventType: provider === 'smartcar' ? body.eventType! : body.type!,
    receivedAt: RECEIVED_AT,
    body,
    ...overrides,
  };
}

const avroTypes = new Map<string, Type>();
function avroType(topic: CanonicalTopic): Type {
  let type = avroTypes.get(topic);
  if (!type) avroTypes.set(topic, (type = Type.forSchema(JSON.parse(canonicalSchema(topic)))));
  return type;
}

const payloads = [...fixtureNames('smartcar'), ...fixtureNames('telematica')].filter(
  (n) => !n.includes('verify'),
);

describe('golden fixtures: provider payload → canonical record', () => {
  it.each(payloads)('%s', (name) => {
    const mapped = mapRawEvent(rawFrom(name));
    const golden = JSON.parse(readFileSync(join(GOLDEN_DIR, name), 'utf8'));
    expect(mapped).toEqual(golden);
    const type = avroType(mapped.topic);
    const errors: string[] = [];
    const valid = type.isValid(mapped.value, { errorHook: (path) => errors.push(path.join('.')) });
    expect({ valid, errors }).toEqual({ valid: true, errors: [] });
  });

  it('has a golden file for every payload fixture', () => {
    expect(payloads.length).toBe(12);
  });

  it('is deterministic: the same delivery maps to the same record and event id', () => {
    for (const name of payloads) expect(mapRawEvent(rawFrom(name))).toEqual(mapRawEvent(rawFrom(name)));
    expect(mapRawEvent(rawFrom('telematica/vehicle-soc.json')).value).toMatchObject({
      eventId: 'telematica:msg_golden',
    });
  });
});

describe('Smartcar VEHICLE_STATE details', () => {
  const v4 = () =>
    fixtureJson<{ data: { signals: Array<Record<string, unknown>> } }>('smartcar/vehicle-state-v4.json');
  const map = (body: unknown) => mapRawEvent(rawFrom('smartcar/vehicle-state-v4.json', { body }));

  it('converts miles to km, watts to kW, and takes occurredAt from the newest oemUpdatedAt', () => {
    const body = v4();
    body.data.signals[0]!.meta = { oemUpdatedAt: 1754365499999 };
    const { value } = map(body);
    expect(value).toMatchObject({
      rangeKm: 150.5 * 1.609344,
      chargePowerKw: 7.36,
      occurredAt: 1754365499999,
    });
  });

  it('skips failed signals and unknown codes, and counts them', () => {
    const mapped = map(v4());
    expect(mapped.failedSignals).toBe(1);
    expect(mapped.unknownSignals).toEqual(['future-unknownsignal']);
    expect(mapped.value).toMatchObject({ odometerKm: null });
  });

  it('falls back to the ingress time when no signal has a timestamp', () => {
    const body = v4();
    for (const s of body.data.signals) delete s.meta;
    expect(map(body).value).toMatchObject({ occurredAt: RECEIVED_AT });
  });

  it('refuses a distance in an unknown unit instead of guessing', () => {
    const body = v4();
    const range = body.data.signals.find((s) => s.code === 'tractionbattery-range')!;
    range.body = { unit: 'furlongs', value: 3 };
    expect(() => map(body)).toThrow(/unknown distance unit "furlongs"/);
  });
});

describe('Telematica details', () => {
  it.each([
    ['NotCharging', false, 'NOT_CHARGING'],
    ['Idle', false, 'NOT_CHARGING'],
    ['FullyCharged', false, 'FULLY_CHARGED'],
    ['Charging', true, 'CHARGING'],
  ])('charging-status %s → isCharging %s, %s', (currentState, isCharging, chargingState) => {
    const body = { ...fixtureJson('telematica/vehicle-charging-status.json'), currentState };
    expect(mapRawEvent(rawFrom('telematica/vehicle-charging-status.json', { body })).value).toMatchObject({
      isCharging,
      chargingState,
    });
  });

  it('keeps the battery snapshot for an unknown charging state string, marked UNKNOWN', () => {
    const body = {
      ...fixtureJson('telematica/vehicle-charging-status.json'),
      currentState: 'Preconditioning',
    };
    expect(mapRawEvent(rawFrom('telematica/vehicle-charging-status.json', { body })).value).toMatchObject({
      isCharging: true,
      chargingState: 'UNKNOWN',
    });
  });

  it('plug-status Unplugged → isPluggedIn false', () => {
    const body = { ...fixtureJson('telematica/vehicle-plug-status.json'), currentState: 'Unplugged' };
    expect(mapRawEvent(rawFrom('telematica/vehicle-plug-status.json', { body })).value).toMatchObject({
      isPluggedIn: false,
    });
  });

  it('converts an odometer in miles', () => {
    const body = fixtureJson<{ vehicleState: { odo: { unit: string; value: number } } }>(
      'telematica/vehicle-soc.json',
    );
    body.vehicleState.odo = { unit: 'miles', value: 100 };
    expect(mapRawEvent(rawFrom('telematica/vehicle-soc.json', { body })).value).toMatchObject({
      odometerKm: 160.9344,
    });
  });
});

describe('records that can never be mapped', () => {
  const codeOf = (raw: RawEvent) => {
    try {
      mapRawEvent(raw);
    } catch (e) {
      return { code: (e as AppError).code, retriable: (e as AppError).retriable };
    }
    return undefined;
  };

  it.each<[string, Partial<RawEvent>, string]>([
    [
      'a body failing the schema',
      { body: { eventId: 'e', eventType: 'VEHICLE_STATE', data: {} } },
      'schema_mismatch',
    ],
    ['an unknown event type', { eventType: 'VEHICLE_TRIP' }, 'unknown_event_type'],
    ['an unknown provider', { provider: 'acme' as never }, 'unknown_provider'],
  ])('%s → %s, not retriable', (_case, overrides, code) => {
    expect(codeOf(rawFrom('smartcar/vehicle-state-v4.json', overrides))).toEqual({ code, retriable: false });
  });
});
