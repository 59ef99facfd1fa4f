import {
  collectRecords,
  eventually,
  fixtureBytes,
  startRedisCluster,
  testKafka,
  uniqueName,
  type RecordCollector,
  type RedisClusterProcess,
} from '@ampflow/testing';
import { slotOf } from '@ampflow/runtime/redis';
import { postTelematica, startIngress, type IngressHarness } from './ingress-harness';

/**
 * Issue 17: the ingress's duplicate check on a Redis Cluster of its own (three masters, no replicas). A master
 * SIGKILLed and restarted empty forgets the marks it held: a redelivery of those events is published again
 * (a duplicate passes, which consumers drop by event id), none is lost, and the ingress goes on without a
 * restart, marking them again.
 */
jest.setTimeout(120_000);

let cluster: RedisClusterProcess;
let h: IngressHarness | undefined;
let collector: RecordCollector | undefined;
beforeAll(async () => {
  cluster = await startRedisCluster();
}, 60_000);
afterAll(async () => {
  await h?.app.stop();
  await collector?.stop();
  await cluster?.stop();
});

const N = 40;

describe('ingress on a Redis Cluster', () => {
  it('stores each event once, and after a master restarts empty lets only its events through again', async () => {
    h = await startIngress({}, testKafka(), cluster.url);
    const body = fixtureBytes('telematica/vehicle-soc.json');
    const ids = Array.from({ length: N }, () => uniqueName('msg'));
    const statuses = async () =>
      Promise.all(ids.map(async (id) => (await postTelematica(h!, body, id)).json?.status));

    expect(await statuses()).toEqual(ids.map(() => 'accepted'));
    // The marks land shortly after the acknowledgement (with the next check, or within 50 ms).
    await eventually(
      async () => (await statuses()).every((s) => s === 'duplicate'),
      'every redelivery a duplicate',
    );

    const onRestarted = new Set(
      ids.filter((id) => cluster.masterOfSlot(slotOf(`${h!.seenNamespace}:seen:telematica:${id}`)) === 1),
    );
    // About a third of the ids, and some elsewhere: both outcomes are tested.
    expect(onRestarted.size).toBeGreaterThan(0);
    expect(onRestarted.size).toBeLessThan(N);
    await cluster.restartEmpty(1);

    const after = await statuses();
    ids.forEach((id, i) => {
      // Every delivery answered 200 (nothing refused, nothing lost); only the forgotten ones stored again.
      expect([id, after[i]]).toEqual([id, onRestarted.has(id) ? 'accepted' : 'duplicate']);
    });
    // Marked again on the restarted master, without restarting the ingress.
    await eventually(async () => (await statuses()).every((s) => s === 'duplicate'), 'marked again');

    collector = await collectRecords(testKafka(), [h.topics.telematica]);
    await collector.waitFor(N + onRestarted.size);
    const perId = new Map<string, number>();
    for (const record of collector.records) {
      const id = String(record.headers['event-id']);
      perId.set(id, (perId.get(id) ?? 0) + 1);
    }
    expect(new Map([...perId].sort())).toEqual(
      new Map(ids.map((id) => [id, onRestarted.has(id) ? 2 : 1] as const).sort()),
    );
  });
});
