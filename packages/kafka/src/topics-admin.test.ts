import { ConfigSource, type Admin } from 'kafkajs';
import { configCorrection, fetchTopicOffsetsWhenReady, type DescribedConfigEntry } from './topics-admin';

const entry = (
  configName: string,
  configValue: string | null,
  configSource: number = ConfigSource.TOPIC_CONFIG,
  isSensitive = false,
): DescribedConfigEntry => ({ configName, configValue, configSource, isSensitive });

describe('configCorrection', () => {
  const wanted = [
    { name: 'cleanup.policy', value: 'delete' },
    { name: 'retention.ms', value: '1209600000' },
  ];

  it('is undefined when the topic already holds every wanted value, set on it or inherited', () => {
    expect(
      configCorrection(
        [entry('cleanup.policy', 'delete', ConfigSource.DEFAULT_CONFIG), entry('retention.ms', '1209600000')],
        wanted,
      ),
    ).toBeUndefined();
  });

  it('names each differing value with the one it replaces, the broker default included', () => {
    const correction = configCorrection(
      [
        entry('cleanup.policy', 'compact'),
        entry('retention.ms', '86400000', ConfigSource.STATIC_BROKER_CONFIG),
      ],
      wanted,
    );
    expect(correction?.changes).toEqual([
      { name: 'cleanup.policy', from: 'compact', to: 'delete' },
      { name: 'retention.ms', from: '86400000', to: '1209600000' },
    ]);
  });

  it("sends the topic's other own values along unchanged, and nothing inherited or sensitive", () => {
    const correction = configCorrection(
      [
        entry('min.insync.replicas', '2'),
        entry('segment.bytes', '1073741824', ConfigSource.DEFAULT_CONFIG),
        entry('retention.ms', '3600000'),
        entry('some.password', 'secret', ConfigSource.TOPIC_CONFIG, true),
        entry('unset.value', null),
      ],
      wanted,
    );
    expect(correction?.configEntries).toEqual([{ name: 'min.insync.replicas', value: '2' }, ...wanted]);
  });

  it('reports a value the broker did not describe as from null', () => {
    expect(configCorrection([], [{ name: 'segment.ms', value: '3600000' }])?.changes).toEqual([
      { name: 'segment.ms', from: null, to: '3600000' },
    ]);
  });
});

describe('fetchTopicOffsetsWhenReady', () => {
  it('retries while the new topic has no leader yet, and gives up on an error that is not retriable', async () => {
    const notLeader = Object.assign(new Error('This server is not the leader for that topic-partition'), {
      retriable: true,
    });
    let calls = 0;
    const offsets = [{ partition: 0, offset: '0', high: '0', low: '0' }];
    const admin = {
      fetchTopicOffsets: async () => {
        calls += 1;
        if (calls < 3) throw notLeader;
        return offsets;
      },
    } as unknown as Admin;
    await expect(fetchTopicOffsetsWhenReady(admin, 't')).resolves.toEqual(offsets);
    expect(calls).toBe(3);

    const refused = Object.assign(new Error('Not authorized'), { retriable: false });
    const denied = { fetchTopicOffsets: async () => Promise.reject(refused) } as unknown as Admin;
    await expect(fetchTopicOffsetsWhenReady(denied, 't')).rejects.toBe(refused);
  });
});
