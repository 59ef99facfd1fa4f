import { Topics } from '@ampflow/contracts';
import { collectRecords, eventually, testKafka, uniqueName } from '@ampflow/testing';
import { telemetry } from './fixtures';
import { deliveredIds, registerSink, type Json, type NotifierUnderTest, managedNotifiers } from './harness';

/**
 * Issue 10, Tests: a sink that times out, `429` with `Retry-After`, and a sink down past the schedule (the
 * deliveries DLQ, `message.attempt.exhausted`, then `POST /v1/messages/:id/retry`).
 */
jest.setTimeout(90_000);

const { notifier, sink, cleanups } = managedNotifiers();

async function attemptsOf(n: NotifierUnderTest, messageId: string): Promise<Json[]> {
  const answer = await n.admin('GET', `/v1/messages/${messageId}/attempts`);
  expect(answer.status).toBe(200);
  return [...answer.body.data].sort((a: Json, b: Json) => a.attempt - b.attempt);
}

describe('notifier retries', () => {
  it('retries a receiver that times out, logs the timeout, and delivers once it answers', async () => {
    const n = await notifier({ requestTimeoutMs: 300 });
    let calls = 0;
    // The first request is never answered (the notifier gives up after 300 ms); later ones get 200.
    const s = await sink((_h, _q, res) => {
      calls += 1;
      if (calls > 1) res.writeHead(200).end('ok');
    });
    await registerSink(n, s, { eventTypes: ['vehicle.telemetry'] });
    await n.produce(Topics.vehicleTelemetry, [telemetry(`telematica:${uniqueName('v')}`, 1)]);

    await eventually(() => deliveredIds(s).length >= 1, 'a successful delivery after the timeout');
    const id = s.received[0]!.id;
    expect(new Set(s.received.map((h) => h.id))).toEqual(new Set([id]));
    await eventually(async () => (await attemptsOf(n, id)).length >= 2, 'two attempts in the log');
    const attempts = await attemptsOf(n, id);
    expect(attempts.map((a) => [a.attempt, a.status, a.error, a.httpStatus])).toEqual([
      [1, 'failed', 'timeout', null],
      [2, 'succeeded', null, 200],
    ]);
    // Delivered exactly once with a 2xx.
    expect(deliveredIds(s)).toEqual([id]);
  });

  it('honours Retry-After on 429 over the shorter scheduled delay', async () => {
    // The schedule would retry after 200 ms; the receiver asks for 1 s.
    const n = await notifier({ retryScheduleMs: [0, 200, 400, 800] });
    let calls = 0;
    const s = await sink((_h, _q, res) => {
      calls += 1;
      if (calls === 1) res.writeHead(429, { 'retry-after': '1' }).end('slow down');
      else res.writeHead(204).end();
    });
    await registerSink(n, s, { eventTypes: ['vehicle.telemetry'] });
    await n.produce(Topics.vehicleTelemetry, [telemetry(`telematica:${uniqueName('v')}`, 1)]);

    await eventually(() => deliveredIds(s).length >= 1, 'the delivery after the 429');
    expect(s.received).toHaveLength(2);
    const [first, second] = s.received;
    expect(second!.id).toBe(first!.id);
    expect(first!.status).toBe(429);
    expect(second!.receivedAt - first!.receivedAt).toBeGreaterThanOrEqual(900);
    await eventually(async () => (await attemptsOf(n, first!.id)).length >= 2, 'two attempts in the log');
    const [failed] = await attemptsOf(n, first!.id);
    expect(failed).toMatchObject({ attempt: 1, status: 'failed', httpStatus: 429, next: 'retry' });
    expect(Date.parse(failed.nextAttemptAt) - Date.parse(failed.at)).toBeGreaterThanOrEqual(1_000);
  });

  it('dead-letters a message past the schedule, tells the operator, and delivers it on retry', async () => {
    const n = await notifier({ retryScheduleMs: [0, 100, 200] });
    let up = false;
    const s = await sink((_h, _q, res) => {
      res.writeHead(up ? 200 : 500).end(up ? 'ok' : 'down');
    });
    const ops = await sink();
    const endpointId = await registerSink(n, s, { eventTypes: ['vehicle.telemetry'] });
    const opsId = await registerSink(n, ops, { eventTypes: ['message.attempt.exhausted'] });
    const kafka = testKafka();
    const dlqTopic = `${n.prefix}${Topics.webhookDeliveriesDlq}`;
    const dlq = await collectRecords(kafka, [dlqTopic]);
    cleanups.push(() => dlq.stop());

    await n.produce(Topics.vehicleTelemetry, [telemetry(`telematica:${uniqueName('v')}`, 1)]);
    const [record] = await dlq.waitFor(1, 30_000);
    const id = s.received[0]!.id;
    expect(s.received.map((h) => [h.id, h.status])).toEqual([
      [id, 500],
      [id, 500],
      [id, 500],
    ]);
    expect(record!.headers).toMatchObject({
      'message-id': id,
      'endpoint-id': endpointId,
      'event-type': 'vehicle.telemetry',
      'error-code': 'exhausted',
      attempts: '3',
      'last-status': '500',
    });
    expect(JSON.parse(record!.value!.toString('utf8'))).toMatchObject({ type: 'vehicle.telemetry' });

    // The operator's endpoint hears of it, signed like any webhook.
    await eventually(() => deliveredIds(ops).length >= 1, 'message.attempt.exhausted at the operator');
    expect(ops.received).toHaveLength(1);
    expect(ops.received[0]!.body).toMatchObject({
      type: 'message.attempt.exhausted',
      data: { messageId: id, endpointId, attempts: 3, lastStatus: 500 },
    });

    await eventually(async () => {
      const letters = await n.admin('GET', `/v1/dead-letters?endpointId=${endpointId}`);
      return letters.body.data.some((d: Json) => d.messageId === id && d.reason === 'exhausted');
    }, 'the dead letter in the API');

    up = true;
    const retried = await n.admin('POST', `/v1/messages/${id}/retry`, {});
    expect(retried).toEqual({ status: 202, body: { queued: 1 } });
    await eventually(() => deliveredIds(s).length >= 1, 'the retried message delivered');
    expect(deliveredIds(s)).toEqual([id]);
    // The operator's endpoint (whose delivery succeeded) is not sent the message again.
    expect(ops.received.filter((h) => h.id === id)).toEqual([]);
    expect(dlq.records).toHaveLength(1);
    await eventually(async () => {
      const letters = await n.admin('GET', `/v1/dead-letters?endpointId=${endpointId}`);
      return !letters.body.data.some((d: Json) => d.messageId === id);
    }, 'the dead letter cleared after the successful retry');
    expect(opsId).not.toBe(endpointId);
  });
});
