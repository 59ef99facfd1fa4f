import {
  describeDeadLetter,
  matchesFilter,
  originalHeaders,
  previewValue,
  redriveMessage,
  sampleRow,
  summarize,
  type DeadLetterRecord,
} from './dead-letters';

const aDeadLetter = (
  overrides: { code?: string; failedAt?: string; headers?: Record<string, string>; value?: string } = {},
): DeadLetterRecord => ({
  partition: 0,
  offset: '7',
  key: Buffer.from('vehicle-1'),
  value: Buffer.from(overrides.value ?? '{"type":"vehicle.soc","soc":80}'),
  headers: {
    provider: 'telematica',
    'event-id': 'msg_1',
    'event-type': 'vehicle.soc',
    'received-at': '2026-05-01T10:00:00.000Z',
    'content-type': 'application/json',
    'error-code': overrides.code ?? 'unmappable',
    'error-message': 'no vehicle',
    'failed-at': overrides.failedAt ?? '2026-05-01T10:00:01.000Z',
    'source-topic': 'ev.raw.telematica.v1',
    'source-partition': '3',
    'source-offset': '42',
    ...overrides.headers,
  },
});

describe('dead letters', () => {
  it('reads the dead-letter headers and the event id', () => {
    expect(describeDeadLetter(aDeadLetter())).toEqual({
      errorCode: 'unmappable',
      errorMessage: 'no vehicle',
      failedAt: new Date('2026-05-01T10:00:01.000Z'),
      sourceTopic: 'ev.raw.telematica.v1',
      sourcePartition: 3,
      sourceOffset: '42',
      eventId: 'msg_1',
    });
  });

  it('takes Buffer headers as kafkajs delivers them, and tolerates missing ones', () => {
    const record = aDeadLetter();
    record.headers = { 'error-code': Buffer.from('bad_json'), 'failed-at': [Buffer.from('not a date')] };
    const info = describeDeadLetter(record);
    expect(info.errorCode).toBe('bad_json');
    expect(info.failedAt).toBeNull();
    expect(info.sourceTopic).toBeUndefined();
    expect(describeDeadLetter({ ...record, headers: {} }).errorCode).toBe('(none)');
  });

  describe('filter', () => {
    const info = describeDeadLetter(aDeadLetter({ failedAt: '2026-05-01T12:00:00Z' }));

    it('matches everything without a filter', () => {
      expect(matchesFilter(info, {})).toBe(true);
    });

    it('matches by error code', () => {
      expect(matchesFilter(info, { errorCode: 'unmappable' })).toBe(true);
      expect(matchesFilter(info, { errorCode: 'bad_json' })).toBe(false);
    });

    it('matches since <= failed-at < until', () => {
      const at = new Date('2026-05-01T12:00:00Z');
      expect(matchesFilter(info, { since: at })).toBe(true);
      expect(matchesFilter(info, { until: at })).toBe(false);
      expect(matchesFilter(info, { since: new Date(at.getTime() + 1) })).toBe(false);
      expect(matchesFilter(info, { until: new Date(at.getTime() + 1) })).toBe(true);
    });

    it('leaves out a dead letter without failed-at when a time bound is given', () => {
      const undated = { ...info, failedAt: null };
      expect(matchesFilter(undated, { since: new Date(0) })).toBe(false);
      expect(matchesFilter(undated, { errorCode: 'unmappable' })).toBe(true);
    });
  });

  it('strips exactly the six dead-letter headers', () => {
    expect(Object.keys(originalHeaders(aDeadLetter().headers)).sort()).toEqual([
      'content-type',
      'event-id',
      'event-type',
      'provider',
      'received-at',
    ]);
  });

  it('redrives the original key, value and headers to the source topic with redriven-at', () => {
    const record = aDeadLetter();
    const now = new Date('2026-05-02T00:00:00.000Z');
    const message = redriveMessage(record, now)!;
    expect(message.topic).toBe('ev.raw.telematica.v1');
    expect(message.key).toBe(record.key);
    expect(message.value).toBe(record.value);
    expect(message.headers).toEqual({
      provider: 'telematica',
      'event-id': 'msg_1',
      'event-type': 'vehicle.soc',
      'received-at': '2026-05-01T10:00:00.000Z',
      'content-type': 'application/json',
      'redriven-at': '2026-05-02T00:00:00.000Z',
    });
  });

  it('does not redrive a dead letter that names no source topic', () => {
    expect(redriveMessage(aDeadLetter({ headers: { 'source-topic': '' } }), new Date())).toBeUndefined();
  });

  it('summarizes counts by code, most frequent first, with first and last failed-at', () => {
    const summary = summarize(
      [
        aDeadLetter({ code: 'bad_json', failedAt: '2026-05-01T09:00:00Z' }),
        aDeadLetter({ code: 'unmappable', failedAt: '2026-05-01T11:00:00Z' }),
        aDeadLetter({ code: 'unmappable', failedAt: '2026-05-01T10:00:00Z' }),
      ].map(describeDeadLetter),
    );
    expect(summary).toEqual({
      total: 3,
      firstFailedAt: new Date('2026-05-01T09:00:00Z'),
      lastFailedAt: new Date('2026-05-01T11:00:00Z'),
      byCode: [
        {
          errorCode: 'unmappable',
          count: 2,
          firstFailedAt: new Date('2026-05-01T10:00:00Z'),
          lastFailedAt: new Date('2026-05-01T11:00:00Z'),
        },
        {
          errorCode: 'bad_json',
          count: 1,
          firstFailedAt: new Date('2026-05-01T09:00:00Z'),
          lastFailedAt: new Date('2026-05-01T09:00:00Z'),
        },
      ],
    });
    expect(summarize([])).toEqual({ total: 0, firstFailedAt: null, lastFailedAt: null, byCode: [] });
  });

  describe('preview', () => {
    it('redacts secrets and personal data at any depth and cuts the text', () => {
      const value = Buffer.from(
        JSON.stringify({
          vin: '7SAWDDEQXPS685253',
          data: { location: { latitude: 1 }, token: 't', soc: 80 },
        }),
      );
      expect(previewValue(value, 500)).toBe(
        '{"vin":"[redacted]","data":{"location":"[redacted]","token":"[redacted]","soc":80}}',
      );
      expect(previewValue(value, 10)).toBe('{"vin":"[…');
    });

    it('shows binary values by size only', () => {
      expect(previewValue(Buffer.from([0, 1, 2, 0xff]), 100)).toBe('(4 bytes, not JSON)');
      expect(previewValue(null, 100)).toBe('(null)');
    });

    it('makes a sample row naming the source position', () => {
      expect(sampleRow(aDeadLetter())).toMatchObject({
        partition: 0,
        offset: '7',
        key: 'vehicle-1',
        eventId: 'msg_1',
        errorCode: 'unmappable',
        source: 'ev.raw.telematica.v1[3]@42',
        value: '{"type":"vehicle.soc","soc":80}',
      });
    });
  });
});
