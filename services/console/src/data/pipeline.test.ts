import pino from 'pino';
import { createPipelineSampler, type PipelineSamplerOptions } from './pipeline';
import { consoleTopics } from './topics';

const topics = consoleTopics('p.');
const logger = pino({ level: 'silent' });

/** A kafkajs admin with fixed groups, committed offsets and topic offsets; counts its offset look-ups. */
function fakeAdmin() {
  const calls = { fetchOffsets: [] as string[] };
  const committed: Record<string, { topic: string; partitions: { partition: number; offset: string }[] }[]> =
    {
      'p.normalizer': [
        {
          topic: 'p.ev.raw.smartcar.v1',
          partitions: [
            { partition: 0, offset: '7' },
            { partition: 1, offset: '-1' },
          ],
        },
      ],
      'p.notifier': [{ topic: 'p.ampflow.notifier.retry.5s', partitions: [{ partition: 0, offset: '3' }] }],
      'other-service': [{ topic: 'unrelated.topic', partitions: [{ partition: 0, offset: '1' }] }],
      'p.session-aggregator': [],
      'ampflow-console-index-abc': [
        { topic: 'p.ev.raw.smartcar.v1', partitions: [{ partition: 0, offset: '0' }] },
      ],
    };
  const ends: Record<string, { partition: number; high: string; low: string }[]> = {
    'p.ev.raw.smartcar.v1': [
      { partition: 0, high: '10', low: '0' },
      { partition: 1, high: '5', low: '2' },
    ],
    'p.ampflow.notifier.retry.5s': [{ partition: 0, high: '3', low: '0' }],
    'p.ev.raw.smartcar.v1.dlq': [{ partition: 0, high: '9', low: '4' }],
    'p.ev.webhook-deliveries.dlq': [{ partition: 0, high: '2', low: '0' }],
    'unrelated.topic': [{ partition: 0, high: '100', low: '0' }],
  };
  return {
    calls,
    admin: {
      listTopics: async () => Object.keys(ends),
      listGroups: async () => ({
        groups: Object.keys(committed).map((groupId) => ({ groupId, protocolType: 'consumer' })),
      }),
      fetchOffsets: async ({ groupId }: { groupId: string }) => {
        calls.fetchOffsets.push(groupId);
        return committed[groupId]!;
      },
      /** The group commits its first offsets (as a service does after its first record). */
      commit(groupId: string, topic: string, offset: string) {
        committed[groupId] = [{ topic, partitions: [{ partition: 0, offset }] }];
      },
      fetchTopicOffsets: async (topic: string) => ends[topic]!.map((e) => ({ ...e, offset: e.high })),
    },
  };
}

function notifierText(delivered: number, retried: number, events: number) {
  return [
    `notifier_events_total{type="vehicle.telemetry"} ${events}`,
    `notifier_deliveries_total{outcome="delivered",status_class="2xx"} ${delivered}`,
    `notifier_deliveries_total{outcome="retry_scheduled",status_class="5xx"} ${retried}`,
    `notifier_deliveries_total{outcome="endpoint_disabled",status_class="none"} 1000`,
  ].join('\n');
}

describe('pipeline sampler', () => {
  it('computes lag per platform group, dead-letter counts, and rates from two scrapes', async () => {
    const { admin, calls } = fakeAdmin();
    let clock = 0;
    const texts = [notifierText(10, 0, 100), notifierText(40, 10, 150)];
    const sampler = createPipelineSampler({
      admin: admin as unknown as PipelineSamplerOptions['admin'],
      topics,
      metricsTargets: [
        { service: 'notifier', url: 'http://n/metrics' },
        { service: 'ingress', url: 'http://i/metrics' },
      ],
      logger,
      now: () => clock,
      fetchMetrics: async (url) => {
        if (url === 'http://i/metrics') throw new Error('connect ECONNREFUSED');
        return texts.shift()!;
      },
    });
    const first = await sampler.sample();
    // 10-7 on partition 0; nothing committed on partition 1: all of it (5-2).
    expect(first.consumerLag).toEqual({ 'p.normalizer': 6, 'p.notifier': 0 });
    expect(first.deadLetters).toEqual({ 'p.ev.raw.smartcar.v1.dlq': 5, 'p.ev.webhook-deliveries.dlq': 2 });
    expect(first.recordsPerSecond).toEqual({ notifier: null, ingress: null });
    expect(first.failureRate).toBeNull();
    expect(first.errors).toEqual(['ingress /metrics: connect ECONNREFUSED']);

    clock = 5_000;
    const second = await sampler.sample();
    expect(second.recordsPerSecond.notifier).toBe(10);
    expect(second.deliveriesPerSecond).toBe(6);
    expect(second.failureRate).toBe(0.25);
    expect(sampler.samples()).toEqual([first, second]);
    // A group with nothing on the platform's topics is not asked again at every sample; the console's own never.
    expect(calls.fetchOffsets.filter((g) => g === 'other-service')).toHaveLength(1);
    expect(calls.fetchOffsets).not.toContain('ampflow-console-index-abc');
  });

  it('asks a group that has committed nothing yet again at the next sample, and shows its lag once it commits', async () => {
    const { admin, calls } = fakeAdmin();
    const sampler = createPipelineSampler({
      admin: admin as unknown as PipelineSamplerOptions['admin'],
      topics,
      metricsTargets: [],
      logger,
    });
    expect(Object.keys((await sampler.sample()).consumerLag)).not.toContain('p.session-aggregator');
    admin.commit('p.session-aggregator', 'p.ev.raw.smartcar.v1', '4');
    expect((await sampler.sample()).consumerLag['p.session-aggregator']).toBe(6);
    expect(calls.fetchOffsets.filter((g) => g === 'p.session-aggregator')).toHaveLength(2);
  });

  it('counts a counter a service does not export yet as 0, so the first burst after a quiet start has a rate', async () => {
    const { admin } = fakeAdmin();
    let clock = 0;
    const texts = ['process_cpu_seconds_total 1', notifierText(20, 0, 40)];
    const sampler = createPipelineSampler({
      admin: admin as unknown as PipelineSamplerOptions['admin'],
      topics,
      metricsTargets: [{ service: 'notifier', url: 'http://n/metrics' }],
      logger,
      now: () => clock,
      fetchMetrics: async () => texts.shift()!,
    });
    await sampler.sample();
    clock = 10_000;
    const second = await sampler.sample();
    expect(second.recordsPerSecond.notifier).toBe(4);
    expect(second.deliveriesPerSecond).toBe(2);
    expect(second.failureRate).toBe(0);
  });

  it('keeps the newest samples only', async () => {
    const { admin } = fakeAdmin();
    const sampler = createPipelineSampler({
      admin: admin as unknown as PipelineSamplerOptions['admin'],
      topics,
      metricsTargets: [],
      logger,
      capacity: 2,
    });
    for (let i = 0; i < 3; i++) await sampler.sample();
    expect(sampler.samples()).toHaveLength(2);
  });
});
