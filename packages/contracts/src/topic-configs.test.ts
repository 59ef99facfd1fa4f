import {
  DEAD_LETTER_HEADROOM_BYTES,
  MAX_MESSAGE_BYTES,
  TOPIC_CLASSES,
  topicConfigEntries,
} from './topic-configs';

const DAY_MS = 24 * 3_600_000;

describe('topic configs', () => {
  it('give the admin API every config of a class as strings, with overrides in place', () => {
    expect(topicConfigEntries('raw', { 'retention.ms': -1 })).toEqual([
      { name: 'cleanup.policy', value: 'delete' },
      { name: 'retention.ms', value: '-1' },
      { name: 'max.message.bytes', value: String(MAX_MESSAGE_BYTES) },
    ]);
    expect(topicConfigEntries('stateChangelog').map((e) => e.name)).toEqual([
      'cleanup.policy',
      'retention.ms',
      'max.message.bytes',
      'segment.ms',
      'delete.retention.ms',
    ]);
  });

  it('keep dead letters at least 14 days, in records larger than their sources by the headroom', () => {
    for (const name of ['deadLetter', 'webhookDeliveriesDlq'] as const) {
      const { config } = TOPIC_CLASSES[name];
      expect(config['retention.ms']).toBeGreaterThanOrEqual(14 * DAY_MS);
      expect(config['max.message.bytes']).toBe(MAX_MESSAGE_BYTES + DEAD_LETTER_HEADROOM_BYTES);
    }
  });

  it('keep deliveries waiting for a retry or a recover longer than the 5-day disable window plus margin', () => {
    for (const name of ['notifierRetry', 'webhookDeliveriesDlq'] as const) {
      expect(TOPIC_CLASSES[name].config['retention.ms']).toBeGreaterThan(5 * DAY_MS + 7 * DAY_MS);
    }
  });

  it('keep compacted topics without an age limit, and delete-policy topics for a positive time or forever', () => {
    for (const [name, { config }] of Object.entries(TOPIC_CLASSES)) {
      const retention = config['retention.ms'];
      if (config['cleanup.policy'] === 'compact')
        expect({ name, retention }).toEqual({ name, retention: -1 });
      else expect(retention === -1 || retention > 0).toBe(true);
      expect(config['max.message.bytes']).toBeGreaterThanOrEqual(MAX_MESSAGE_BYTES);
    }
  });
});
