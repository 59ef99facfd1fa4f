import { effectiveBodyLimitBytes, RECORD_OVERHEAD_ALLOWANCE_BYTES } from './body-limit';

describe('effectiveBodyLimitBytes', () => {
  it('keeps MAX_BODY_BYTES when the topic takes more (Kafka default ~1 MiB vs 256 KiB)', () => {
    expect(effectiveBodyLimitBytes(256 * 1024, 1_048_588 - 512)).toBe(256 * 1024);
  });

  it('lowers the limit below a small topic limit, leaving room for key and headers', () => {
    expect(effectiveBodyLimitBytes(256 * 1024, 65_536 - 512)).toBe(
      65_536 - 512 - RECORD_OVERHEAD_ALLOWANCE_BYTES,
    );
  });

  it('refuses a topic that cannot hold a record at all', () => {
    expect(() => effectiveBodyLimitBytes(256 * 1024, RECORD_OVERHEAD_ALLOWANCE_BYTES)).toThrow(/at most/);
  });
});
