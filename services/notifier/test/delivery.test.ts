import { Topics } from '@ampflow/contracts';
import { eventually, uniqueName } from '@ampflow/testing';
import { deviceLink, session, telemetry } from './fixtures';
import { registerSink, type Json, managedNotifiers } from './harness';

const { notifier, sink } = managedNotifiers();

describe('notifier delivery', () => {
  it('delivers enriched, verified session webhooks to a subscribed endpoint', async () => {
    const n = await notifier();
    const s = await sink();
    await registerSink(n, s, { eventTypes: ['charging_session.started', 'charging_session.ended'] });
    const vehicle = `smartcar:${uniqueName('v')}`;
    await n.produce(
      Topics.deviceLinks,
      [deviceLink('user-1', vehicle, { make: 'TESLA', model: 'Model 3', year: 2022 })],
      () => 'user-1',
    );
    await n.produce(Topics.chargingSessions, [session(vehicle, 'STARTED'), session(vehicle, 'ENDED')]);
    await eventually(() => s.received.length >= 2, 'two session webhooks');
    const types = s.received.map((h) => h.type).sort();
    expect(types).toEqual(['charging_session.ended', 'charging_session.started']);
    const ended = s.received.find((h) => h.type === 'charging_session.ended')!;
    expect(ended.body.data).toMatchObject({
      vehicleId: vehicle,
      userId: 'user-1',
      vehicle: { make: 'TESLA', model: 'Model 3', year: 2022 },
    });
    expect(ended.headers['svix-id']).toBe(ended.id);
    expect(s.unverified).toBe(0);
  });

  it('retries a failing receiver with the same webhook-id until it succeeds', async () => {
    const n = await notifier();
    let calls = 0;
    const s = await sink((_h, _q, res) => {
      calls += 1;
      res.writeHead(calls <= 2 ? 500 : 200).end('ok');
    });
    const endpointId = await registerSink(n, s, { eventTypes: ['vehicle.telemetry'] });
    const vehicle = `telematica:${uniqueName('v')}`;
    await n.produce(Topics.vehicleTelemetry, [telemetry(vehicle, 1, { stateOfChargePercent: 50 })]);
    await eventually(() => s.received.length >= 3, 'three attempts');
    const ids = new Set(s.received.map((h) => h.id));
    expect(ids.size).toBe(1);
    await eventually(async () => {
      const attempts = await n.admin('GET', `/v1/endpoints/${endpointId}/attempts`);
      return attempts.body.data.length >= 3;
    }, 'three attempts in the log');
    const attempts = await n.admin('GET', `/v1/messages/${[...ids][0]}/attempts`);
    expect(attempts.body.data.map((a: Json) => a.status).sort()).toEqual(['failed', 'failed', 'succeeded']);
  });

  it('delivers everything when partitions hold more retries than they may take at once (fetching pauses and resumes)', async () => {
    const n = await notifier({ maxOutstandingPerPartition: 3, retryScheduleMs: [0, 300] });
    const firstSeen = new Set<string>();
    const s = await sink((hook, _q, res) => {
      // Every message fails once, so all of them pass through the retry tier.
      const first = !firstSeen.has(hook.id);
      firstSeen.add(hook.id);
      res.writeHead(first ? 503 : 204).end();
    });
    await registerSink(n, s, { eventTypes: ['vehicle.telemetry'] });
    const vehicle = `smartcar:${uniqueName('v')}`;
    const readings = Array.from({ length: 40 }, (_, i) => telemetry(vehicle, i, { stateOfChargePercent: i }));
    await n.produce(Topics.vehicleTelemetry, readings);
    await eventually(
      () => firstSeen.size === 40 && s.received.length >= 80,
      'every message delivered after one retry',
      60_000,
    );
    expect(s.received.length).toBe(80);
  });
});
