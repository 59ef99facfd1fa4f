import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Topics, type CanonicalTopic, type Provider } from '@ampflow/contracts';

/** Parsed JSON, loosely typed: the builder copies provider payloads and rewrites a few fields. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

/**
 * The provider payloads the scenario is built from: the golden fixtures of `packages/testing/fixtures`
 * (extracted from the providers' documentation), read once by {@link loadTemplates}.
 */
export interface Templates {
  /** `smartcar/vehicle-state-v4.json`: the v4.0 envelope with every charge signal. */
  smartcarState: Json;
  /** `smartcar/vehicle-error.json`. */
  smartcarError: Json;
  /** `telematica/user-devices-connected.json`. */
  telematicaDevices: Json;
  /** `telematica/vehicle-plug-status.json`. */
  telematicaPlug: Json;
  /** `telematica/vehicle-charging-status.json`. */
  telematicaCharging: Json;
  /** `telematica/vehicle-soc.json`. */
  telematicaSoc: Json;
  /** `telematica/vehicle-charging-command.json`. */
  telematicaCommand: Json;
}

const TEMPLATE_FILES: Record<keyof Templates, string> = {
  smartcarState: 'smartcar/vehicle-state-v4.json',
  smartcarError: 'smartcar/vehicle-error.json',
  telematicaDevices: 'telematica/user-devices-connected.json',
  telematicaPlug: 'telematica/vehicle-plug-status.json',
  telematicaCharging: 'telematica/vehicle-charging-status.json',
  telematicaSoc: 'telematica/vehicle-soc.json',
  telematicaCommand: 'telematica/vehicle-charging-command.json',
};

/** The repository's provider fixtures, relative to this file in `src/` or `dist/`. */
export const DEFAULT_FIXTURES_DIR = join(__dirname, '..', '..', 'testing', 'fixtures');

export function loadTemplates(dir: string = DEFAULT_FIXTURES_DIR): Templates {
  const entries = Object.entries(TEMPLATE_FILES).map(([name, file]) => [
    name,
    JSON.parse(readFileSync(join(dir, file), 'utf8')) as Json,
  ]);
  return Object.fromEntries(entries) as Templates;
}

/** One demo vehicle, as the platform names it and as its provider describes it. */
export interface DemoVehicle {
  provider: Provider;
  /** Canonical id, `<provider>:<provider id>`. */
  vehicleId: string;
  providerVehicleId: string;
  make: string;
  model: string;
  year: number;
}

/** One signed POST to the ingress. */
export interface ScenarioDelivery {
  /** 1-based position in the posting order. */
  step: number;
  /** What the delivery means, for the output. */
  label: string;
  provider: Provider;
  /** The provider's idempotency key: Smartcar `eventId`, the Svix message id for Telematica. */
  providerEventId: string;
  /** The exact body posted (and signed). */
  body: string;
  /** What the ingress must answer: `accepted`, or `duplicate` for a repeated event id. */
  outcome: 'accepted' | 'duplicate';
}

/** A canonical record the scenario must produce, exactly once. */
export interface ExpectedRecord {
  /** `<provider>:<providerEventId>`. */
  eventId: string;
  topic: CanonicalTopic;
  /** The record's key: vehicle, user or command target. */
  key: string;
  label: string;
}

/** One change of a session the aggregator must write. */
export interface ExpectedSessionChange {
  vehicleId: string;
  version: number;
  change: 'STARTED' | 'UPDATED' | 'ENDED';
  endReason: 'CHARGING_STOPPED' | 'FULLY_CHARGED' | 'UNPLUGGED' | null;
  socStartPercent: number;
  socEndPercent: number;
}

/** How many verified customer webhooks of a type the sink must receive for a vehicle. */
export interface ExpectedWebhooks {
  type: string;
  vehicleId: string;
  count: number;
}

export interface Scenario {
  runId: string;
  vehicles: { smartcar: DemoVehicle; telematica: DemoVehicle };
  /** Canonical user ids (`smartcar:<id>`, `telematica:<id>`). */
  userIds: string[];
  deliveries: ScenarioDelivery[];
  expected: {
    records: ExpectedRecord[];
    sessions: ExpectedSessionChange[];
    webhooks: ExpectedWebhooks[];
  };
}

export interface ScenarioOptions {
  /** Distinguishes runs: every id is derived from it, so two runs never share an id and one run is repeatable. */
  runId: string;
  /** The current time, epoch ms: readings span the hour before it. */
  now: number;
}

const MINUTE_MS = 60_000;
/** Readings are spread over the hour before `now`, one minute apart at the finest. */
const SPAN_MINUTES = 60;

/** 64 hex characters derived from the run and a label. */
function digest(runId: string, label: string): string {
  return createHash('sha256').update(`ampflow-demo|${runId}|${label}`).digest('hex');
}

function uuidOf(runId: string, label: string): string {
  const h = digest(runId, label);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** Svix message ids look like `msg_` + 27 base62 characters; hex keeps them deterministic and valid. */
const svixIdOf = (runId: string, label: string) => `msg_demo${digest(runId, label).slice(0, 23)}`;

const clone = <T>(value: T): T => structuredClone(value);

interface SmartcarReading {
  minute: number;
  label: string;
  plugged: boolean;
  charging: boolean;
  status: 'CHARGING' | 'NOT_CHARGING' | 'FULLY_CHARGED';
  soc: number;
  powerW: number;
  energyKwh?: number;
  minutesToFull?: number;
  trigger: string;
}

interface TelematicaReading {
  minute: number;
  label: string;
  template: 'telematicaPlug' | 'telematicaCharging' | 'telematicaSoc';
  currentState?: string;
  plugged: boolean;
  charging: boolean;
  soc: number;
  targetSoc?: number;
  message?: string;
}

/**
 * Builds the demo's two-provider scenario from the fixtures: a Smartcar Tesla and a Telematica BMW, each
 * plugged in, charging with rising SOC (and power, which only Smartcar reports), stopping (target SOC reached /
 * charge stopped) and unplugged; a Telematica device link, a command result and a Smartcar vehicle error; one
 * delivery repeated with the same event id and one reading delivered late. Pure: the same options give the same
 * scenario, byte for byte.
 */
export function buildScenario(templates: Templates, options: ScenarioOptions): Scenario {
  const { runId } = options;
  const at = (minute: number) => options.now - (SPAN_MINUTES - minute) * MINUTE_MS;
  const iso = (minute: number) => new Date(at(minute)).toISOString();

  const scVehicleId = uuidOf(runId, 'smartcar-vehicle');
  const scUserId = uuidOf(runId, 'smartcar-user');
  const tmVehicleId = digest(runId, 'telematica-vehicle').slice(0, 24);
  const tmUserId = `demo-user-${digest(runId, 'telematica-user').slice(0, 12)}`;
  const scTemplateVehicle = templates.smartcarState.data.vehicle;
  const tmAttributes = templates.telematicaCharging.vehicleState.staticAttributes;
  const smartcar: DemoVehicle = {
    provider: 'smartcar',
    vehicleId: `smartcar:${scVehicleId}`,
    providerVehicleId: scVehicleId,
    make: scTemplateVehicle.make,
    model: scTemplateVehicle.model,
    year: scTemplateVehicle.year,
  };
  const telematica: DemoVehicle = {
    provider: 'telematica',
    vehicleId: `telematica:${tmVehicleId}`,
    providerVehicleId: tmVehicleId,
    make: tmAttributes.make,
    model: tmAttributes.model,
    year: tmAttributes.year,
  };

  const templateSignal = (code: string): Json => {
    const template = templates.smartcarState.data.signals.find((s: Json) => s.code === code);
    if (!template) throw new Error(`the Smartcar template has no signal ${code}`);
    return clone(template);
  };
  const templateBody = (code: string): Json => templateSignal(code).body;
  const signalOf = (code: string, body: Json, minute: number): Json => ({
    ...templateSignal(code),
    body,
    meta: { oemUpdatedAt: at(minute), retrievedAt: at(minute) + 120 },
  });

  const smartcarState = (reading: SmartcarReading): string => {
    const event = clone(templates.smartcarState);
    const m = reading.minute;
    event.eventId = uuidOf(runId, `smartcar-event-${reading.label}`);
    event.vehicleId = scVehicleId;
    event.data.user.id = scUserId;
    event.data.vehicle.id = scVehicleId;
    const signals = [
      signalOf('charge-ischargingcableconnected', { value: reading.plugged }, m),
      signalOf('charge-ischarging', { value: reading.charging }, m),
      signalOf('charge-detailedchargingstatus', { value: reading.status }, m),
      signalOf('tractionbattery-stateofcharge', { unit: 'percent', value: reading.soc }, m),
      signalOf('tractionbattery-range', { unit: 'kilometers', value: Math.round(reading.soc * 5.1) }, m),
      signalOf('charge-wattage', { unit: 'watts', value: reading.powerW }, m),
      signalOf('charge-activelimit', { value: 80 }, m),
      signalOf('tractionbattery-nominalcapacity', templateBody('tractionbattery-nominalcapacity'), m),
    ];
    if (reading.powerW > 0) {
      signals.push(
        signalOf('charge-voltage', { unit: 'volts', value: 400 }, m),
        signalOf('charge-amperage', { unit: 'amps', value: Math.round(reading.powerW / 400) }, m),
      );
    }
    if (reading.energyKwh !== undefined)
      signals.push(signalOf('charge-energyadded', { unit: 'kilowatt_hours', value: reading.energyKwh }, m));
    if (reading.minutesToFull !== undefined)
      signals.push(signalOf('charge-timetocomplete', { value: reading.minutesToFull }, m));
    event.data.signals = signals;
    const trigger = signals.find((s: Json) => s.code === reading.trigger);
    event.data.triggers = [{ code: trigger.code, name: trigger.name, group: trigger.group }];
    event.meta = {
      ...event.meta,
      deliveryId: uuidOf(runId, `smartcar-delivery-${reading.label}`),
      deliveredAt: at(m) + 1_000,
      signalCount: signals.length,
    };
    return JSON.stringify(event);
  };

  const telematicaStatus = (reading: TelematicaReading): string => {
    const event = clone(templates[reading.template]);
    event.vehicleId = tmVehicleId;
    event.jobId = digest(runId, `telematica-job-${reading.label}`).slice(0, 24);
    if (reading.currentState !== undefined) event.currentState = reading.currentState;
    if (reading.template === 'telematicaSoc') {
      event.currentSoc = reading.soc;
      event.targetSoc = reading.targetSoc ?? null;
    }
    if (reading.message !== undefined) event.message = reading.message;
    const state = event.vehicleState;
    state.id = digest(runId, 'telematica-connection').slice(0, 24);
    Object.assign(state.batteryState, {
      isPlugged: reading.plugged,
      isCharging: reading.charging,
      chargeThresholdMet: reading.soc >= 80,
      soc: reading.soc,
      range: Math.round(reading.soc * 0.55),
      rangeUnit: 'km',
      lastUpdated: iso(reading.minute),
    });
    state.location.lastUpdated = iso(reading.minute);
    state.odo.lastUpdated = iso(reading.minute);
    return JSON.stringify(event);
  };

  const devices = clone(templates.telematicaDevices);
  devices.user = tmUserId;
  const [device] = devices.devices;
  Object.assign(device, {
    clientUserId: tmUserId,
    deviceId: tmVehicleId,
    country: tmAttributes.country,
    make: tmAttributes.make,
    model: tmAttributes.model,
    nickname: tmAttributes.nickname,
    vin: tmAttributes.vin,
    year: tmAttributes.year,
  });
  devices.devices = [device];

  const command = clone(templates.telematicaCommand);
  Object.assign(command, {
    action: 'charge-stop',
    vehicleId: tmVehicleId,
    jobId: `charge-stop.charge-${tmVehicleId}`,
    message: 'Charging command executed and result confirmed',
  });

  const vehicleError = clone(templates.smartcarError);
  vehicleError.eventId = uuidOf(runId, 'smartcar-event-error');
  vehicleError.vehicleId = scVehicleId;
  vehicleError.data.user.id = scUserId;
  vehicleError.data.vehicle.id = scVehicleId;
  vehicleError.data.meta = {
    ...vehicleError.data.meta,
    deliveryId: uuidOf(runId, 'smartcar-delivery-error'),
    deliveryTimestamp: iso(55),
  };

  const sc = (r: SmartcarReading) => ({
    provider: 'smartcar' as const,
    label: r.label,
    providerEventId: uuidOf(runId, `smartcar-event-${r.label}`),
    body: smartcarState(r),
  });
  const tm = (label: string, body: string) => ({
    provider: 'telematica' as const,
    label,
    providerEventId: svixIdOf(runId, `telematica-${label}`),
    body,
  });
  const tmReading = (r: TelematicaReading) => tm(r.label, telematicaStatus(r));
  const scCharging = (
    minute: number,
    soc: number,
    powerW: number,
    energyKwh: number,
    minutesToFull: number,
  ) => ({
    minute,
    plugged: true,
    charging: true,
    status: 'CHARGING' as const,
    soc,
    powerW,
    energyKwh,
    minutesToFull,
    trigger: 'tractionbattery-stateofcharge',
  });

  const tmSocAt20 = tmReading({
    minute: 20,
    label: 'soc 55%',
    template: 'telematicaSoc',
    plugged: true,
    charging: true,
    soc: 55,
    targetSoc: 80,
    message: 'SOC change detected',
  });
  const ordered: Array<Omit<ScenarioDelivery, 'step' | 'outcome'> & { outcome?: 'duplicate' }> = [
    tm('devices connected', JSON.stringify(devices)),
    sc({
      minute: 0,
      label: 'parked, unplugged',
      plugged: false,
      charging: false,
      status: 'NOT_CHARGING',
      soc: 38,
      powerW: 0,
      trigger: 'charge-ischargingcableconnected',
    }),
    tmReading({
      minute: 1,
      label: 'parked, unplugged',
      template: 'telematicaPlug',
      currentState: 'Unplugged',
      plugged: false,
      charging: false,
      soc: 41,
    }),
    sc({
      minute: 2,
      label: 'plugged in',
      plugged: true,
      charging: false,
      status: 'NOT_CHARGING',
      soc: 38,
      powerW: 0,
      trigger: 'charge-ischargingcableconnected',
    }),
    sc({ label: 'charging 39%', ...scCharging(3, 39, 7_400, 0.1, 95) }),
    tmReading({
      minute: 4,
      label: 'plugged in',
      template: 'telematicaPlug',
      currentState: 'Plugged',
      plugged: true,
      charging: false,
      soc: 41,
    }),
    tmReading({
      minute: 5,
      label: 'charging 42%',
      template: 'telematicaCharging',
      currentState: 'Charging',
      plugged: true,
      charging: true,
      soc: 42,
    }),
    sc({ label: 'charging 52%', ...scCharging(15, 52, 11_000, 9.8, 40) }),
    tmSocAt20,
    sc({ label: 'charging 68%', ...scCharging(30, 68, 11_000, 21.8, 18) }),
    tmReading({
      minute: 35,
      label: 'target SOC reached',
      template: 'telematicaSoc',
      plugged: true,
      charging: true,
      soc: 80,
      targetSoc: 80,
      message: 'Target SOC reached',
    }),
    tm('charge-stop command', JSON.stringify(command)),
    tmReading({
      minute: 37,
      label: 'charging stopped',
      template: 'telematicaCharging',
      currentState: 'NotCharging',
      plugged: true,
      charging: false,
      soc: 80,
      message: 'Charging-status change detected',
    }),
    sc({
      minute: 42,
      label: 'target SOC reached',
      plugged: true,
      charging: false,
      status: 'FULLY_CHARGED',
      soc: 80,
      powerW: 0,
      energyKwh: 30.9,
      minutesToFull: 0,
      trigger: 'charge-detailedchargingstatus',
    }),
    tmReading({
      minute: 45,
      label: 'unplugged',
      template: 'telematicaPlug',
      currentState: 'Unplugged',
      plugged: false,
      charging: false,
      soc: 80,
    }),
    sc({
      minute: 50,
      label: 'unplugged',
      plugged: false,
      charging: false,
      status: 'NOT_CHARGING',
      soc: 80,
      powerW: 0,
      trigger: 'charge-ischargingcableconnected',
    }),
    {
      provider: 'smartcar',
      label: 'vehicle error',
      providerEventId: vehicleError.eventId,
      body: JSON.stringify(vehicleError),
    },
    { ...tmSocAt20, label: 'soc 55% again (same event id)', outcome: 'duplicate' },
    sc({ label: 'charging 58% (late: older than the unplug)', ...scCharging(20, 58, 11_000, 14.2, 30) }),
  ];
  const deliveries: ScenarioDelivery[] = ordered.map((d, i) => ({
    step: i + 1,
    label: d.label,
    provider: d.provider,
    providerEventId: d.providerEventId,
    body: d.body,
    outcome: d.outcome ?? 'accepted',
  }));

  return {
    runId,
    vehicles: { smartcar, telematica },
    userIds: [`smartcar:${scUserId}`, `telematica:${tmUserId}`],
    deliveries,
    expected: {
      records: deliveries.filter((d) => d.outcome === 'accepted').map((d) => expectedRecord(d, scenarioKeys)),
      sessions: [
        ...sessionChanges(smartcar.vehicleId, 39, [52, 68, 80], 'FULLY_CHARGED'),
        ...sessionChanges(telematica.vehicleId, 42, [55, 80, 80], 'CHARGING_STOPPED'),
      ],
      webhooks: expectedWebhooks(smartcar.vehicleId, telematica.vehicleId, deliveries),
    },
  };

  function scenarioKeys(d: ScenarioDelivery): { topic: CanonicalTopic; key: string } {
    const body = JSON.parse(d.body);
    const type = body.type ?? body.eventType;
    if (type === 'user.devices-connected')
      return { topic: Topics.deviceLinks, key: `telematica:${tmUserId}` };
    if (type === 'vehicle.charging-command')
      return { topic: Topics.commandResults, key: telematica.vehicleId };
    if (type === 'VEHICLE_ERROR') return { topic: Topics.vehicleErrors, key: smartcar.vehicleId };
    return {
      topic: Topics.vehicleTelemetry,
      key: d.provider === 'smartcar' ? smartcar.vehicleId : telematica.vehicleId,
    };
  }
}

function expectedRecord(
  d: ScenarioDelivery,
  keys: (d: ScenarioDelivery) => { topic: CanonicalTopic; key: string },
): ExpectedRecord {
  return { eventId: `${d.provider}:${d.providerEventId}`, ...keys(d), label: `${d.provider} ${d.label}` };
}

/** STARTED at `socStart`, one UPDATED per reading while charging, ENDED on the last: versions 1..n. */
function sessionChanges(
  vehicleId: string,
  socStart: number,
  socAfter: number[],
  endReason: 'FULLY_CHARGED' | 'CHARGING_STOPPED',
): ExpectedSessionChange[] {
  const last = socAfter.length;
  return [socStart, ...socAfter].map((soc, i) => ({
    vehicleId,
    version: i + 1,
    change: i === 0 ? 'STARTED' : i === last ? 'ENDED' : 'UPDATED',
    endReason: i === last ? endReason : null,
    socStartPercent: socStart,
    socEndPercent: soc,
  }));
}

/**
 * The customer webhooks the scenario causes, per vehicle: every reading's `vehicle.telemetry` (a late one
 * too: it is still a reading), one plug event per real change after the first reading's baseline, the four
 * session changes, the device link, the command result and the vehicle error. The duplicate causes nothing.
 */
function expectedWebhooks(
  smartcar: string,
  telematica: string,
  deliveries: ScenarioDelivery[],
): ExpectedWebhooks[] {
  const telemetry = (provider: Provider) =>
    deliveries.filter((d) => {
      if (d.provider !== provider || d.outcome !== 'accepted') return false;
      const body = JSON.parse(d.body);
      return (
        body.eventType === 'VEHICLE_STATE' || /^vehicle\.(plug-status|charging-status|soc)$/.test(body.type)
      );
    }).length;
  const perVehicle = (vehicleId: string, provider: Provider) => [
    { type: 'vehicle.telemetry', vehicleId, count: telemetry(provider) },
    { type: 'vehicle.plugged_in', vehicleId, count: 1 },
    { type: 'vehicle.unplugged', vehicleId, count: 1 },
    { type: 'charging_session.started', vehicleId, count: 1 },
    { type: 'charging_session.updated', vehicleId, count: 2 },
    { type: 'charging_session.ended', vehicleId, count: 1 },
  ];
  return [
    ...perVehicle(smartcar, 'smartcar'),
    { type: 'vehicle.error', vehicleId: smartcar, count: 1 },
    { type: 'device.connected', vehicleId: telematica, count: 1 },
    ...perVehicle(telematica, 'telematica'),
    { type: 'command.result', vehicleId: telematica, count: 1 },
  ];
}
