import { ConfigError } from '@ampflow/config';
import { readConfig } from './config';

const required = {
  SMARTCAR_MANAGEMENT_TOKEN: 'amt',
  TELEMATICA_WEBHOOK_SECRET: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
};

describe('ingress config', () => {
  it('bounds the bytes in flight at 64 MiB by default', () => {
    expect(readConfig(required).INGRESS_MAX_INFLIGHT_BYTES).toBe(64 * 1024 * 1024);
  });

  it('refuses a bound below one body, naming both variables', () => {
    const read = () =>
      readConfig({ ...required, MAX_BODY_BYTES: '1048576', INGRESS_MAX_INFLIGHT_BYTES: '65536' });
    expect(read).toThrow(ConfigError);
    expect(read).toThrow(/INGRESS_MAX_INFLIGHT_BYTES \(65536\) must be at least MAX_BODY_BYTES \(1048576\)/);
  });

  it('keeps the raw archive 90 days by default, forever with -1, and refuses 0', () => {
    expect(readConfig(required).RAW_RETENTION_MS).toBe(7_776_000_000);
    expect(readConfig({ ...required, RAW_RETENTION_MS: '-1' }).RAW_RETENTION_MS).toBe(-1);
    expect(() => readConfig({ ...required, RAW_RETENTION_MS: '0' })).toThrow(/RAW_RETENTION_MS/);
    expect(() => readConfig({ ...required, RAW_RETENTION_MS: '-2' })).toThrow(ConfigError);
  });
});
