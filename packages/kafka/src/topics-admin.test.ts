import { ConfigSource } from 'kafkajs';
import { configCorrection, type DescribedConfigEntry } from './topics-admin';

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
