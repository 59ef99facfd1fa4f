import { retentionUpdate, type TopicConfigEntry } from './raw-retention';

const entry = (configName: string, configValue: string, configSource = 1): TopicConfigEntry => ({
  configName,
  configValue,
  configSource,
  isSensitive: false,
});

describe('raw topic retention', () => {
  it('changes nothing when retention.ms already is the wanted value', () => {
    expect(retentionUpdate([entry('retention.ms', '7776000000')], 7_776_000_000)).toBeUndefined();
    expect(retentionUpdate([entry('retention.ms', '-1')], -1)).toBeUndefined();
  });

  it('sets retention.ms and keeps the values set on the topic, not those inherited from the broker', () => {
    expect(
      retentionUpdate(
        [
          entry('retention.ms', '604800000', 5),
          entry('max.message.bytes', '2097152'),
          entry('cleanup.policy', 'delete', 5),
          { ...entry('secret.thing', 'x'), isSensitive: true },
        ],
        7_776_000_000,
      ),
    ).toEqual({
      from: '604800000',
      configEntries: [
        { name: 'max.message.bytes', value: '2097152' },
        { name: 'retention.ms', value: '7776000000' },
      ],
    });
  });

  it('replaces a retention.ms set on the topic', () => {
    expect(retentionUpdate([entry('retention.ms', '2592000000')], -1)).toEqual({
      from: '2592000000',
      configEntries: [{ name: 'retention.ms', value: '-1' }],
    });
  });
});
