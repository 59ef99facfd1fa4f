import { smartcarVehicleError, smartcarVehicleState, telematicaSchemas, Topics } from '@ampflow/contracts';
import { buildScenario, loadTemplates, type Scenario } from './scenario';

const templates = loadTemplates();
const NOW = Date.parse('2026-05-04T12:00:00.000Z');
const build = (runId = 'run-a', now = NOW) => buildScenario(templates, { runId, now });

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const bodies = (s: Scenario): any[] => s.deliveries.map((d) => JSON.parse(d.body));
const ids = (s: Scenario) => [
  s.vehicles.smartcar.vehicleId,
  s.vehicles.telematica.vehicleId,
  ...s.userIds,
  ...s.deliveries.map((d) => d.providerEventId),
];

describe('buildScenario', () => {
  it('is deterministic: the same run id and time give the same deliveries, byte for byte', () => {
    expect(build()).toEqual(build());
  });

  it('gives every run its own vehicles, users and event ids', () => {
    const a = new Set(ids(build('run-a')));
    const b = ids(build('run-b'));
    expect(b.filter((id) => a.has(id))).toEqual([]);
  });

  it('builds payloads that pass the providers’ schemas, as the ingress checks them', () => {
    for (const body of bodies(build())) {
      const schema =
        body.eventType === 'VEHICLE_STATE'
          ? smartcarVehicleState
          : body.eventType === 'VEHICLE_ERROR'
            ? smartcarVehicleError
            : telematicaSchemas[body.type as keyof typeof telematicaSchemas];
      expect(schema.safeParse(body).success).toBe(true);
    }
  });

  it('uses one event id per delivery, except the duplicate, which repeats an accepted delivery exactly', () => {
    const { deliveries } = build();
    const duplicates = deliveries.filter((d) => d.outcome === 'duplicate');
    expect(duplicates).toHaveLength(1);
    const original = deliveries.find(
      (d) => d.outcome === 'accepted' && d.providerEventId === duplicates[0]!.providerEventId,
    );
    expect(original?.body).toBe(duplicates[0]!.body);
    expect(original!.step).toBeLessThan(duplicates[0]!.step);
    const accepted = deliveries.filter((d) => d.outcome === 'accepted').map((d) => d.providerEventId);
    expect(new Set(accepted).size).toBe(accepted.length);
  });

  it('places readings in the hour before now, with one delivered after a newer reading of its vehicle', () => {
    const scenario = build();
    const readings = bodies(scenario)
      .map((body, i) => ({ body, delivery: scenario.deliveries[i]! }))
      .filter(({ body }) => body.eventType === 'VEHICLE_STATE');
    const times = readings.map(({ body }) =>
      Math.max(...body.data.signals.map((s: { meta: { oemUpdatedAt: number } }) => s.meta.oemUpdatedAt)),
    );
    for (const t of times) {
      expect(t).toBeGreaterThanOrEqual(NOW - 3_600_000);
      expect(t).toBeLessThan(NOW);
    }
    const late = times.filter((t, i) => times.slice(0, i).some((earlier) => earlier > t));
    expect(late).toHaveLength(1);
    expect(readings.at(-1)!.delivery.label).toMatch(/late/);
  });

  it('links the Telematica vehicle with its make, model and year, and keeps the fixture’s Smartcar vehicle', () => {
    const scenario = build();
    const link = bodies(scenario).find((b) => b.type === 'user.devices-connected');
    expect(link.devices).toEqual([
      expect.objectContaining({
        deviceId: scenario.vehicles.telematica.providerVehicleId,
        make: 'BMW',
        model: 'X2 xDrive25e',
        year: 2022,
      }),
    ]);
    expect(scenario.vehicles.smartcar).toMatchObject({ make: 'Tesla', model: 'Model 3', year: 2020 });
  });

  it('expects one record per accepted delivery, on the topic of its event type', () => {
    const { expected } = build();
    const perTopic = (topic: string) => expected.records.filter((r) => r.topic === topic).length;
    expect(expected.records).toHaveLength(18);
    expect(perTopic(Topics.vehicleTelemetry)).toBe(15);
    expect(perTopic(Topics.deviceLinks)).toBe(1);
    expect(perTopic(Topics.commandResults)).toBe(1);
    expect(perTopic(Topics.vehicleErrors)).toBe(1);
  });

  it('expects one session per vehicle: started, two updates, ended for its own reason', () => {
    const { expected, vehicles } = build();
    const view = expected.sessions.map((s) => [
      s.vehicleId,
      s.version,
      s.change,
      s.endReason,
      s.socEndPercent,
    ]);
    expect(view).toEqual([
      [vehicles.smartcar.vehicleId, 1, 'STARTED', null, 39],
      [vehicles.smartcar.vehicleId, 2, 'UPDATED', null, 52],
      [vehicles.smartcar.vehicleId, 3, 'UPDATED', null, 68],
      [vehicles.smartcar.vehicleId, 4, 'ENDED', 'FULLY_CHARGED', 80],
      [vehicles.telematica.vehicleId, 1, 'STARTED', null, 42],
      [vehicles.telematica.vehicleId, 2, 'UPDATED', null, 55],
      [vehicles.telematica.vehicleId, 3, 'UPDATED', null, 80],
      [vehicles.telematica.vehicleId, 4, 'ENDED', 'CHARGING_STOPPED', 80],
    ]);
  });

  it('expects 30 customer webhooks: every reading, plug changes, session changes, link, command and error', () => {
    const { expected, vehicles } = build();
    const count = (type: string, vehicleId?: string) =>
      expected.webhooks
        .filter((w) => w.type === type && (vehicleId === undefined || w.vehicleId === vehicleId))
        .reduce((sum, w) => sum + w.count, 0);
    expect(expected.webhooks.reduce((sum, w) => sum + w.count, 0)).toBe(30);
    expect(count('vehicle.telemetry', vehicles.smartcar.vehicleId)).toBe(8);
    expect(count('vehicle.telemetry', vehicles.telematica.vehicleId)).toBe(7);
    expect(count('vehicle.plugged_in')).toBe(2);
    expect(count('charging_session.updated')).toBe(4);
    expect(count('device.connected', vehicles.telematica.vehicleId)).toBe(1);
  });
});
