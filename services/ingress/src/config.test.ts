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

  it('answers every webhook within 5 s and cuts slow headers off after 10 s by default', () => {
    const config = readConfig(required);
    expect([
      config.INGRESS_REQUEST_DEADLINE_MS,
      config.HTTP_HEADERS_TIMEOUT_MS,
      config.HTTP_REQUEST_TIMEOUT_MS,
      config.HTTP_KEEP_ALIVE_TIMEOUT_MS,
      config.HTTP_MAX_CONNECTIONS,
    ]).toEqual([5_000, 10_000, 30_000, 65_000, 1_000]);
  });

  it('paces produce requests 5 ms apart unless KAFKA_REQUEST_INTERVAL_MS says otherwise (0: off), up to 1 s', () => {
    expect(readConfig(required).KAFKA_REQUEST_INTERVAL_MS).toBe(5);
    expect(readConfig({ ...required, KAFKA_REQUEST_INTERVAL_MS: '0' }).KAFKA_REQUEST_INTERVAL_MS).toBe(0);
    expect(() => readConfig({ ...required, KAFKA_REQUEST_INTERVAL_MS: '5000' })).toThrow(
      /KAFKA_REQUEST_INTERVAL_MS/,
    );
  });

  it('sends into an idle producer at once unless KAFKA_LINGER_MS says to wait, up to 1 s', () => {
    expect(readConfig(required).KAFKA_LINGER_MS).toBe(0);
    expect(readConfig({ ...required, KAFKA_LINGER_MS: '5' }).KAFKA_LINGER_MS).toBe(5);
    expect(() => readConfig({ ...required, KAFKA_LINGER_MS: '-1' })).toThrow(/KAFKA_LINGER_MS/);
    expect(() => readConfig({ ...required, KAFKA_LINGER_MS: '5000' })).toThrow(/KAFKA_LINGER_MS/);
  });

  it('refuses a request timeout below the headers timeout, with the other problems at once', () => {
    const read = () =>
      readConfig({
        ...required,
        HTTP_HEADERS_TIMEOUT_MS: '20000',
        HTTP_REQUEST_TIMEOUT_MS: '10000',
        MAX_BODY_BYTES: '1048576',
        INGRESS_MAX_INFLIGHT_BYTES: '65536',
      });
    expect(read).toThrow(
      /HTTP_REQUEST_TIMEOUT_MS \(10000\) must be at least HTTP_HEADERS_TIMEOUT_MS \(20000\)/,
    );
    expect(read).toThrow(/INGRESS_MAX_INFLIGHT_BYTES/);
  });
});
