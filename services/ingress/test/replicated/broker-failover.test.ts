import { ConfigResourceTypes, Kafka, logLevel, type Producer } from 'kafkajs';
import pino from 'pino';
import { createCompactedTable, createKafka, createReliableProducer, ensureTopics } from '@ampflow/kafka';
import {
  collectRecords,
  eventually,
  fixtureBytes,
  startFaultStack,
  uniqueName,
  type FaultStack,
  type RecordCollector,
} from '@ampflow/testing';
import { postTelematica, startIngress, type IngressHarness } from '../ingress-harness';

/**
 * Issue 17: the ingress against a replicated Kafka (stack.sh with AMPFLOW_KAFKA_BROKERS=3: three brokers and a
 * KRaft controller, replication factor 3, min.insync.replicas 2), as deploy/k8s/kafka-topics asks for. Real
 * broker processes of this file's own (fault-stack), never the shared broker. Run with `npm run test:replicated`.
 */
jest.setTimeout(600_000);

const logger = pino({ level: process.env.AMPFLOW_TEST_LOG ?? 'silent' });
const soc = fixtureBytes('telematica/vehicle-soc.json');
const BROKERS = [1, 2, 3];

let stack: FaultStack;
beforeAll(async () => {
  // No registry: the ingress stores raw bytes.
  stack = await startFaultStack({ brokers: 3, registry: false });
}, 420_000);
afterAll(async () => {
  await stack?.stop();
});

const running: { stop(): Promise<void> }[] = [];
afterEach(async () => {
  for (const r of running.splice(0).reverse()) await r.stop().catch(() => undefined);
});

const kafka = () => createKafka({ brokers: stack.kafkaBrokers, clientId: uniqueName('replicated'), logger });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const accepted = (status: number) => status >= 200 && status < 300;

/** Topic-level `min.insync.replicas` of each topic as the brokers report it (the broker default when unset). */
async function minInsyncReplicas(topics: string[]): Promise<Record<string, string | null>> {
  const admin = kafka().admin();
  await admin.connect();
  try {
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: topics.map((name) => ({
        type: ConfigResourceTypes.TOPIC,
        name,
        configNames: ['min.insync.replicas'],
      })),
    });
    return Object.fromEntries(
      resources.map((r) => [
        r.resourceName,
        r.configEntries.find((e) => e.configName === 'min.insync.replicas')?.configValue ?? null,
      ]),
    );
  } finally {
    await admin.disconnect();
  }
}

/**
 * Creates `topics` (3 partitions) with `leader` first in every partition's replica list, so the controller
 * makes it the leader of all of them; resolves once it is and every replica is in sync.
 */
async function createLedBy(leader: number, topics: string[]): Promise<void> {
  const followers = BROKERS.filter((b) => b !== leader);
  const admin = kafka().admin();
  await admin.connect();
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: topics.map((topic) => ({
        topic,
        replicaAssignment: [0, 1, 2].map((partition) => ({
          partition,
          replicas: [leader, ...(partition % 2 ? [...followers].reverse() : followers)],
        })),
      })),
    });
  } finally {
    await admin.disconnect();
  }
  await eventually(
    async () =>
      (await Promise.all(topics.map((t) => stack.describePartitions(t))))
        .flat()
        .every((p) => p.leader === leader && p.isr.length === 3),
    `${topics.join(', ')} led by broker ${leader} with all three replicas in sync`,
    60_000,
    250,
  );
}

async function readyIngress(topics: IngressHarness['topics']): Promise<IngressHarness> {
  const h = await startIngress({ topics }, kafka());
  running.push(h.app);
  await eventually(async () => (await fetch(`${h.url}/readyz`)).status === 200, 'the ingress ready', 60_000);
  return h;
}

interface Outcome {
  id: string;
  status: number;
  startedAt: number;
  answeredAt: number;
}

/** `workers` providers, each posting signed webhooks one after the other (new ids) until stopped. */
function steadyLoad(h: IngressHarness, workers: number) {
  const outcomes: Outcome[] = [];
  const prefix = uniqueName('msg_load');
  let stopping = false;
  const loops = Array.from({ length: workers }, async (_, w) => {
    for (let i = 0; !stopping; i++) {
      const id = `${prefix}_${w}_${i}`;
      const startedAt = Date.now();
      const status = await postTelematica(h, soc, id).then(
        (res) => res.status,
        () => 0,
      );
      outcomes.push({ id, status, startedAt, answeredAt: Date.now() });
      await sleep(20);
    }
  });
  return {
    outcomes,
    async stop() {
      stopping = true;
      await Promise.all(loops);
    },
  };
}

/** What a provider does with a 503: the same id again until it gets a 2xx. */
async function redeliverUntilAccepted(h: IngressHarness, ids: string[]): Promise<void> {
  for (const id of ids) {
    let status = 0;
    await eventually(
      async () => {
        status = (await postTelematica(h, soc, id)).status;
        return accepted(status);
      },
      `a redelivery of ${id} accepted (last answer ${status})`,
      60_000,
      250,
    );
  }
}

/** Every acknowledged id read back from the raw topic, and how many copies of each. */
async function readBack(
  topic: string,
  acknowledged: Set<string>,
): Promise<{ missing: string[]; duplicated: string[]; stored: number }> {
  const collector: RecordCollector = await collectRecords(kafka(), [topic]);
  running.push(collector);
  const ids = () => new Set(collector.records.map((r) => r.headers['event-id']));
  await eventually(
    () => [...acknowledged].every((id) => ids().has(`${id}`)),
    `all ${acknowledged.size} acknowledged ids on ${topic}`,
    60_000,
    250,
  ).catch(() => undefined);
  // Room for late copies, which would show as duplicates.
  await sleep(1_000);
  const copies = new Map<string, number>();
  for (const r of collector.records) {
    const id = r.headers['event-id']!;
    copies.set(id, (copies.get(id) ?? 0) + 1);
  }
  return {
    missing: [...acknowledged].filter((id) => !copies.has(id)),
    duplicated: [...copies].filter(([, n]) => n > 1).map(([id]) => id),
    stored: collector.records.length,
  };
}

function report(line: string) {
  process.stderr.write(`[replicated] ${line}\n`);
}

it('creates the services topics with replication factor 3 and min.insync.replicas 2 from the broker defaults', async () => {
  // The ingress creates its raw topics itself (replication factor -1: the broker default).
  const topics = { smartcar: uniqueName('raw-smartcar'), telematica: uniqueName('raw-telematica') };
  const h = await readyIngress(topics);
  expect((await postTelematica(h, soc, uniqueName('msg_first'))).status).toBe(200);

  // So does a compacted table (the notifier's subscriptions, the aggregator's changelog).
  const producer = createReliableProducer(kafka());
  await producer.connect();
  running.push({ stop: () => producer.disconnect() });
  const tableTopic = uniqueName('table');
  const table = createCompactedTable<string>({
    kafka: kafka(),
    topic: tableTopic,
    logger,
    decode: (value) => value.toString(),
    encode: (value) => Buffer.from(value),
    producer,
    onFatal: (error) => {
      throw error;
    },
  });
  await table.start();
  running.push(table);
  await table.put('k', 'v');

  // A consumer group makes the broker create __consumer_offsets.
  const collector = await collectRecords(kafka(), [topics.telematica]);
  running.push(collector);
  await collector.waitFor(1, 60_000);

  const created = [topics.smartcar, topics.telematica, tableTopic];
  for (const topic of [...created, '__consumer_offsets']) {
    const partitions = await stack.describePartitions(topic);
    expect({ topic, partitions: partitions.length > 0 }).toEqual({ topic, partitions: true });
    for (const p of partitions)
      expect({ topic, replicas: p.replicas.length }).toEqual({ topic, replicas: 3 });
  }
  expect(await minInsyncReplicas([...created, '__consumer_offsets'])).toEqual(
    Object.fromEntries([...created, '__consumer_offsets'].map((t) => [t, '2'])),
  );
});

it('keeps acknowledging webhooks through a SIGKILL of the raw topics leader: every 2xx is stored, 503 only until a new leader takes writes', async () => {
  const leader = 2;
  const topics = { smartcar: uniqueName('raw-smartcar'), telematica: uniqueName('raw-telematica') };
  await createLedBy(leader, [topics.smartcar, topics.telematica]);
  const h = await readyIngress(topics);
  expect(await stack.leaderOf(topics.telematica, 0)).toBe(leader);

  const load = steadyLoad(h, 6);
  running.push(load);
  const okCount = (since = 0) =>
    load.outcomes.filter((o) => o.startedAt >= since && accepted(o.status)).length;
  await eventually(() => okCount() >= 100, 'the load accepted before the kill', 120_000, 100);

  const killedAt = Date.now();
  await stack.killBroker(leader, 'SIGKILL');
  await eventually(
    async () =>
      (await stack.describePartitions(topics.telematica)).every((p) => p.leader > 0 && p.leader !== leader),
    `a new leader for every partition of ${topics.telematica}`,
    120_000,
    200,
  );
  const leaderMovedAt = Date.now();
  const newLeaders = (await stack.describePartitions(topics.telematica)).map((p) => p.leader);
  await eventually(() => okCount(leaderMovedAt) >= 200, 'the load accepted after the failover', 120_000, 100);
  await load.stop();

  const outcomes = load.outcomes;
  const refused = outcomes.filter((o) => !accepted(o.status));
  const acknowledged = new Set(outcomes.filter((o) => accepted(o.status)).map((o) => o.id));
  // Nothing but 2xx and 503 (no 500, no dropped connection).
  expect(refused.filter((o) => o.status !== 503)).toEqual([]);
  // 503 only for requests that were waiting while the old leader was dead and no new one was elected.
  expect(refused.filter((o) => o.answeredAt < killedAt || o.startedAt > leaderMovedAt)).toEqual([]);
  // Everything sent once the new leader was there was accepted.
  expect(outcomes.filter((o) => o.startedAt > leaderMovedAt && !accepted(o.status))).toEqual([]);

  // The provider redelivers each 503; then every acknowledged id is on the raw topic, once.
  await redeliverUntilAccepted(
    h,
    refused.map((o) => o.id),
  );
  for (const o of refused) acknowledged.add(o.id);
  const stored = await readBack(topics.telematica, acknowledged);
  report(
    `leader kill: ${outcomes.length} webhooks sent, ${outcomes.length - refused.length} acknowledged at once, ` +
      `${refused.length} answered 503 (all between the kill and the new leader, ${Math.round((leaderMovedAt - killedAt) / 1000)} s); ` +
      `after redelivery ${acknowledged.size} acknowledged, ${stored.stored} records stored, ` +
      `${stored.missing.length} missing, ${stored.duplicated.length} duplicated; new leaders ${newLeaders.join(',')}`,
  );
  expect({ missing: stored.missing, duplicated: stored.duplicated }).toEqual({ missing: [], duplicated: [] });
  expect(stored.stored).toBe(acknowledged.size);

  await stack.startBroker(leader);
});

/** A plain acks=all producer that does not retry: the broker's answer to one write, as its error type. */
async function probeWrite(producer: Producer, topic: string): Promise<string> {
  try {
    await producer.send({ topic, acks: -1, timeout: 5_000, messages: [{ key: 'probe', value: 'probe' }] });
    return 'ok';
  } catch (err) {
    const e = err as { type?: string; cause?: { type?: string }; name?: string };
    return e.type ?? e.cause?.type ?? e.name ?? 'unknown';
  }
}

it('answers 503 while two brokers are down (NOT_ENOUGH_REPLICAS), loses nothing acknowledged, and accepts again once one returns', async () => {
  // Broker 2 came back at the end of the previous test; `up` starts whatever is not running.
  await stack.startKafka();
  const leader = 1;
  const [down1, down2] = [2, 3] as const;
  const topics = { smartcar: uniqueName('raw-smartcar'), telematica: uniqueName('raw-telematica') };
  const probeTopic = uniqueName('probe');
  await createLedBy(leader, [topics.smartcar, topics.telematica, probeTopic]);
  const h = await readyIngress(topics);

  const acknowledged = new Set<string>();
  for (let i = 0; i < 20; i++) {
    const id = uniqueName('msg_before');
    expect((await postTelematica(h, soc, id)).status).toBe(200);
    acknowledged.add(id);
  }

  const probe = new Kafka({
    brokers: stack.kafkaBrokers,
    clientId: uniqueName('probe'),
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
  }).producer({ allowAutoTopicCreation: false, retry: { retries: 0 } });
  await probe.connect();
  running.push({ stop: () => probe.disconnect() });
  expect(await probeWrite(probe, probeTopic)).toBe('ok');

  await stack.killBroker(down1, 'SIGKILL');
  await stack.killBroker(down2, 'SIGKILL');
  // Once the controller fenced both, the leader's ISR is itself alone: acks=all writes are refused.
  let lastAnswer = '';
  await eventually(
    async () => (lastAnswer = await probeWrite(probe, probeTopic)) === 'NOT_ENOUGH_REPLICAS',
    `NOT_ENOUGH_REPLICAS for an acks=all write (last answer ${lastAnswer})`,
    120_000,
    500,
  );
  const isr = (await stack.describePartitions(topics.telematica)).map((p) => p.isr);
  expect(isr).toEqual([[leader], [leader], [leader]]);

  // Webhooks during the outage: refused with 503, none acknowledged.
  const outageIds = Array.from({ length: 30 }, (_, i) => `${uniqueName('msg_outage')}_${i}`);
  const answers = await Promise.all(outageIds.map((id) => postTelematica(h, soc, id)));
  const statuses = answers.map((a) => a.status);
  expect(statuses).toEqual(outageIds.map(() => 503));
  expect(answers.map((a) => (a.json?.error as { code?: string } | undefined)?.code)).toEqual(
    outageIds.map(() => expect.stringMatching(/^(kafka_timeout|deadline_exceeded)$/)),
  );

  // One broker back: two replicas in sync again, and writes succeed.
  await stack.startBroker(down1);
  await eventually(
    async () => (await probeWrite(probe, probeTopic)) === 'ok',
    'an acks=all write accepted with two brokers up',
    120_000,
    500,
  );
  const firstAfter = uniqueName('msg_after');
  await redeliverUntilAccepted(h, [firstAfter]);
  acknowledged.add(firstAfter);
  for (let i = 0; i < 20; i++) {
    const id = uniqueName('msg_after');
    expect((await postTelematica(h, soc, id)).status).toBe(200);
    acknowledged.add(id);
  }

  // The provider redelivers the 503s; every acknowledged id is stored, once.
  await redeliverUntilAccepted(h, outageIds);
  for (const id of outageIds) acknowledged.add(id);
  const stored = await readBack(topics.telematica, acknowledged);
  report(
    `two brokers down: ${outageIds.length} webhooks answered 503 during the outage (none 2xx), ` +
      `${acknowledged.size} acknowledged in all after one broker returned and the 503s were redelivered, ` +
      `${stored.stored} records stored, ${stored.missing.length} missing, ${stored.duplicated.length} duplicated`,
  );
  expect({ missing: stored.missing, duplicated: stored.duplicated }).toEqual({ missing: [], duplicated: [] });
  expect(stored.stored).toBe(acknowledged.size);
});

it('shows each node in `stack.sh status`, and keeps every record across `down` and `up`', async () => {
  const nodeStates = async () =>
    Object.fromEntries(
      (await stack.status())
        .split('\n')
        .map((line) => line.split(/\s+/))
        .filter(([name]) => name?.startsWith('kafka'))
        .map(([name, state]) => [name, state]),
    );
  // Broker 3 is still down from the previous test.
  expect(await nodeStates()).toEqual({
    'kafka-controller': 'up',
    'kafka-1': 'up',
    'kafka-2': 'up',
    'kafka-3': 'down',
  });
  await stack.startBroker(3);
  expect(Object.values(await nodeStates())).toEqual(['up', 'up', 'up', 'up']);

  const topic = uniqueName('kept');
  const producer = createReliableProducer(kafka());
  await producer.connect();
  const ids = Array.from({ length: 50 }, (_, i) => `kept-${i}`);
  try {
    await ensureTopicsWithDefaults(topic);
    await Promise.all(ids.map((id) => producer.send(topic, [{ key: id, value: Buffer.from(id) }])));
  } finally {
    await producer.disconnect();
  }

  await stack.restartAll();
  expect(Object.values(await nodeStates())).toEqual(['up', 'up', 'up', 'up']);
  const collector = await collectRecords(kafka(), [topic]);
  running.push(collector);
  await collector.waitFor(ids.length, 60_000);
  expect(collector.records.map((r) => r.key).sort()).toEqual([...ids].sort());
  await eventually(
    async () => (await stack.describePartitions(topic)).every((p) => p.isr.length === 3),
    `all three replicas of ${topic} in sync after the restart`,
    60_000,
    250,
  );
});

/** A topic with the broker defaults (replication factor -1, so 3), as the services create theirs. */
async function ensureTopicsWithDefaults(topic: string): Promise<void> {
  await ensureTopics(kafka(), [{ topic, numPartitions: 3 }]);
}
