import { Topics } from '@ampflow/contracts';
import { eventually, uniqueName } from '@ampflow/testing';
import { telemetry } from './fixtures';
import { deliveredIds, registerSink, type Json, type NotifierUnderTest, managedNotifiers } from './harness';

/**
 * Issue 10, Tests: `410` disables the endpoint and what arrives while it is disabled is kept (not sent) until
 * `recover`; `recover` re-sends only the range asked for.
 */
jest.setTimeout(90_000);

const { notifier, sink } = managedNotifiers();

async function deadLetters(n: NotifierUnderTest, endpointId: string): Promise<Json[]> {
  const answer = await n.admin('GET', `/v1/dead-letters?endpointId=${endpointId}`);
  expect(answer.status).toBe(200);
  return answer.body.data;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('notifier endpoint recovery', () => {
  it('410 disables the endpoint, keeps later messages as dead letters, and recover re-sends them', async () => {
    const startedAt = new Date(Date.now() - 1_000).toISOString();
    const n = await notifier();
    let gone = true;
    const s = await sink((_h, _q, res) => {
      res.writeHead(gone ? 410 : 200).end(gone ? 'gone' : 'ok');
    });
    const endpointId = await registerSink(n, s, { eventTypes: ['vehicle.telemetry'] });
    const vehicle = `telematica:${uniqueName('v')}`;

    await n.produce(Topics.vehicleTelemetry, [telemetry(vehicle, 1)]);
    await eventually(
      async () => (await n.admin('GET', `/v1/endpoints/${endpointId}`)).body.enabled === false,
      'the endpoint disabled',
    );
    const endpoint = await n.admin('GET', `/v1/endpoints/${endpointId}`);
    expect(endpoint.body).toMatchObject({ enabled: false, disabledReason: 'endpoint_gone' });
    const first = s.received[0]!.id;
    await eventually(
      async () => (await deadLetters(n, endpointId)).some((d) => d.messageId === first),
      'the 410 message in the dead letters',
    );
    expect((await deadLetters(n, endpointId)).find((d) => d.messageId === first)).toMatchObject({
      reason: 'endpoint_gone',
      lastStatus: 410,
    });

    // While disabled: kept as dead letters, not sent.
    await n.produce(Topics.vehicleTelemetry, [telemetry(vehicle, 2), telemetry(vehicle, 3)]);
    await eventually(
      async () =>
        (await deadLetters(n, endpointId)).filter((d) => d.reason === 'endpoint_disabled').length >= 2,
      'two endpoint_disabled dead letters',
    );
    const letters = await deadLetters(n, endpointId);
    const later = letters.filter((d) => d.reason === 'endpoint_disabled').map((d) => d.messageId);
    expect(new Set(later).size).toBe(2);
    expect(later).not.toContain(first);
    expect(s.received.map((h) => h.id)).toEqual([first]);

    // Recover refuses a disabled endpoint; once re-enabled it re-sends all three with their webhook-ids.
    expect((await n.admin('POST', `/v1/endpoints/${endpointId}/recover`, { since: startedAt })).status).toBe(
      409,
    );
    gone = false;
    const enabled = await n.admin('PATCH', `/v1/endpoints/${endpointId}`, { enabled: true });
    expect(enabled.body).toMatchObject({ enabled: true });
    const recovered = await n.admin('POST', `/v1/endpoints/${endpointId}/recover`, { since: startedAt });
    expect(recovered).toEqual({ status: 202, body: { queued: 3 } });
    await eventually(() => deliveredIds(s).length >= 3, 'the three messages re-sent');
    expect(new Set(deliveredIds(s))).toEqual(new Set([first, ...later]));
    expect(deliveredIds(s)).toHaveLength(3);
    await eventually(
      async () => (await deadLetters(n, endpointId)).length === 0,
      'the dead letters cleared after recovery',
    );
  });

  it('recover re-sends only the dead letters since the given time', async () => {
    // One attempt only: every failure is a dead letter at once.
    const n = await notifier({ retryScheduleMs: [0] });
    let up = false;
    const s = await sink((_h, _q, res) => {
      res.writeHead(up ? 204 : 500).end();
    });
    const endpointId = await registerSink(n, s, { eventTypes: ['vehicle.telemetry'] });
    const vehicle = `telematica:${uniqueName('v')}`;

    await n.produce(Topics.vehicleTelemetry, [telemetry(vehicle, 1), telemetry(vehicle, 2)]);
    await eventually(async () => (await deadLetters(n, endpointId)).length >= 2, 'the early dead letters');
    const early = (await deadLetters(n, endpointId)).map((d) => d.messageId);
    await sleep(300);
    const since = new Date().toISOString();
    await sleep(300);
    await n.produce(Topics.vehicleTelemetry, [
      telemetry(vehicle, 3),
      telemetry(vehicle, 4),
      telemetry(vehicle, 5),
    ]);
    await eventually(async () => (await deadLetters(n, endpointId)).length >= 5, 'the later dead letters');
    const all = await deadLetters(n, endpointId);
    expect(all.every((d) => d.reason === 'exhausted')).toBe(true);
    const late = all.map((d) => d.messageId).filter((id) => !early.includes(id));
    expect(late).toHaveLength(3);
    expect(s.received).toHaveLength(5);

    up = true;
    const recovered = await n.admin('POST', `/v1/endpoints/${endpointId}/recover`, { since });
    expect(recovered).toEqual({ status: 202, body: { queued: 3 } });
    await eventually(() => deliveredIds(s).length >= 3, 'the later messages re-sent');
    expect(new Set(deliveredIds(s))).toEqual(new Set(late));
    // The early ones are still dead letters (nothing re-sent them); the later ones are cleared.
    await eventually(
      async () => (await deadLetters(n, endpointId)).length === 2,
      'only the early dead letters left',
    );
    expect(new Set((await deadLetters(n, endpointId)).map((d) => d.messageId))).toEqual(new Set(early));
    expect(s.received.filter((h) => early.includes(h.id))).toHaveLength(2);
  });
});
