import { Topics } from '@ampflow/contracts';
import { startRedisCluster, uniqueName, eventually, type RedisClusterProcess } from '@ampflow/testing';
import { telemetry } from './fixtures';
import { deliveredIds, managedNotifiers, registerSink, startNotifier, type Sink } from './harness';

/**
 * Issue 17: the notifier on a Redis Cluster of its own (three masters, no replicas): fan-out's batch read, done
 * marks, attempt log and message index touch keys of many slots, sent per slot. A master SIGKILLed and
 * restarted empty loses its share of history and marks, nothing pending (that is in Kafka): the notifier keeps
 * delivering without a restart.
 */
jest.setTimeout(120_000);

const { sink, cleanups } = managedNotifiers();
let cluster: RedisClusterProcess;
beforeAll(async () => {
  cluster = await startRedisCluster();
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

/** One reading each of `count` vehicles: their keys spread over the cluster's slots. */
function readings(count: number) {
  return Array.from({ length: count }, () => telemetry(`telematica:${uniqueName('v')}`, 1));
}

const distinct = (s: Sink) => new Set(deliveredIds(s));

describe('notifier on a Redis Cluster', () => {
  it('delivers every message once with its history, and again after a master restarts empty', async () => {
    const n = await startNotifier({}, { redisUrl: cluster.url });
    cleanups.push(() => n.stop());
    const a = await sink();
    const b = await sink();
    await registerSink(n, a, { eventTypes: ['vehicle.telemetry'] });
    await registerSink(n, b, { eventTypes: ['vehicle.telemetry'] });

    const first = readings(30);
    await n.produce(Topics.vehicleTelemetry, first);
    await eventually(() => distinct(a).size >= 30 && distinct(b).size >= 30, 'the first messages at both');
    // Once each: nothing failed, so nothing is sent twice.
    expect(deliveredIds(a)).toHaveLength(30);
    expect(deliveredIds(b)).toHaveLength(30);
    // The history (attempt lists, message index) of messages whose keys are on every master.
    const messageIds = [...distinct(a)];
    await eventually(async () => {
      const answers = await Promise.all(messageIds.map((id) => n.admin('GET', `/v1/messages/${id}`)));
      return answers.every((answer) => answer.status === 200 && answer.body.attempts.length === 2);
    }, 'every message with both attempts in its history');
    const listed = await n.admin('GET', '/v1/messages?limit=100');
    expect(listed.status).toBe(200);
    expect(new Set(listed.body.data.map((m: { id: string }) => m.id))).toEqual(new Set(messageIds));

    // The master dies while the next messages are on their way, stays down past the node timeout (the
    // cluster refuses every command meanwhile: CLUSTERDOWN) and comes back empty (restartEmpty checks that).
    expect(await cluster.dbsize(1)).toBeGreaterThan(0);
    const second = readings(30);
    await Promise.all([n.produce(Topics.vehicleTelemetry, second), cluster.restartEmpty(1, 3_000)]);
    await eventually(
      () => distinct(a).size >= 60 && distinct(b).size >= 60,
      'the messages after the restart at both, without restarting the notifier',
    );
    // A lost done mark may repeat a delivery (at least once); none is missing.
    expect(distinct(a).size).toBe(60);
    expect(distinct(b).size).toBe(60);
    expect(a.unverified + b.unverified).toBe(0);
    expect(n.fatalErrors).toEqual([]);
  });
});
