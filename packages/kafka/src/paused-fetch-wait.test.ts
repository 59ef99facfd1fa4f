import { PAUSED_FETCH_WAIT_MS, registerFetchWait, registeredFetchWaits } from './paused-fetch-wait';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const ConsumerGroup = require('kafkajs/src/consumer/consumerGroup');

/**
 * A kafkajs ConsumerGroup whose fetch stops before any I/O: the metadata refresh it calls first throws, after
 * the patch has set `maxWaitTime` for this fetch.
 */
function aGroup(memberId: string | null, maxWaitTimeInMs = 500) {
  const cluster = {
    refreshMetadataIfNecessary: async () => {
      throw new Error('stop here');
    },
  };
  const group = new ConsumerGroup({
    retry: { retries: 0 },
    cluster,
    groupId: 'g',
    topics: [],
    topicConfigurations: [],
    logger: { namespace: () => ({ debug() {}, info() {}, warn() {}, error() {} }) },
    instrumentationEmitter: { emit() {} },
    assigners: [],
    sessionTimeout: 10_000,
    rebalanceTimeout: 10_000,
    maxBytesPerPartition: 1,
    minBytes: 1,
    maxBytes: 1,
    maxWaitTimeInMs,
    isolationLevel: 1,
  });
  group.memberId = memberId;
  return group as { maxWaitTime: number; memberId: string | null; fetch(nodeId: number): Promise<unknown> };
}

describe('the paused-fetch-wait patch of kafkajs ConsumerGroup.fetch', () => {
  it('gives a registered member the wait it asks for, and its own maxWaitTime back when it asks for none', async () => {
    const group = aGroup('member-1');
    let paused = true;
    const unregister = registerFetchWait('member-1', () => (paused ? PAUSED_FETCH_WAIT_MS : undefined));
    await group.fetch(0).catch(() => undefined);
    expect(group.maxWaitTime).toBe(PAUSED_FETCH_WAIT_MS);
    paused = false;
    await group.fetch(0).catch(() => undefined);
    expect(group.maxWaitTime).toBe(500);
    unregister();
    expect(registeredFetchWaits()).toBe(0);
  });

  it('leaves members that did not register (and groups not joined yet) as kafkajs has them', async () => {
    const unregister = registerFetchWait('member-2', () => 1);
    const other = aGroup('member-3', 800);
    const notJoined = aGroup(null, 700);
    await other.fetch(0).catch(() => undefined);
    await notJoined.fetch(0).catch(() => undefined);
    expect([other.maxWaitTime, notJoined.maxWaitTime]).toEqual([800, 700]);
    unregister();
  });

  it('unregisters only what it registered (a rejoin registers the member again first)', () => {
    const first = registerFetchWait('member-4', () => 1);
    const second = registerFetchWait('member-4', () => 2);
    first();
    expect(registeredFetchWaits()).toBe(1);
    second();
    expect(registeredFetchWaits()).toBe(0);
  });
});
