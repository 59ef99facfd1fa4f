import { ConfigError } from '@ampflow/config';
import { readConfig } from './config';

const required = {
  NOTIFIER_ADMIN_TOKEN: 'token',
  SCHEMA_REGISTRY_URL: 'http://127.0.0.1:8081/apis/ccompat/v7',
};

describe('notifier config', () => {
  it('defaults: Svix schedule, https only, no private networks, 15 s timeout, 10 per endpoint, 5 days', () => {
    expect(readConfig(required)).toMatchObject({
      NOTIFIER_RETRY_SCHEDULE: [0, 5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000],
      NOTIFIER_RETRY_AFTER_MAX_MS: 3_600_000,
      NOTIFIER_ALLOWED_NETWORKS: [],
      NOTIFIER_ALLOW_HTTP: false,
      NOTIFIER_REQUEST_TIMEOUT_MS: 15_000,
      NOTIFIER_ENDPOINT_CONCURRENCY: 10,
      NOTIFIER_SECRET_ROTATION_OVERLAP_MS: 86_400_000,
      NOTIFIER_DISABLE_AFTER_FAILING_MS: 432_000_000,
      NOTIFIER_CIRCUIT_FAILURES: 5,
      NOTIFIER_CIRCUIT_COOLDOWN_MS: 60_000,
    });
  });

  it('reads a fast schedule, loopback networks and http for local runs and tests', () => {
    const config = readConfig({
      ...required,
      NOTIFIER_RETRY_SCHEDULE: '0, 100ms, 1s',
      NOTIFIER_ALLOWED_NETWORKS: '127.0.0.0/8, ::1/128',
      NOTIFIER_ALLOW_HTTP: 'true',
    });
    expect(config.NOTIFIER_RETRY_SCHEDULE).toEqual([0, 100, 1_000]);
    expect(config.NOTIFIER_ALLOWED_NETWORKS).toEqual(['127.0.0.0/8', '::1/128']);
    expect(config.NOTIFIER_ALLOW_HTTP).toBe(true);
  });

  it('reports every bad notifier variable at once, by name', () => {
    let error: unknown;
    try {
      readConfig({
        ...required,
        NOTIFIER_RETRY_SCHEDULE: '0,5 minutes',
        NOTIFIER_ALLOWED_NETWORKS: '10.0.0.0/8,intranet',
        NOTIFIER_ALLOW_HTTP: 'yes',
        NOTIFIER_ENDPOINT_CONCURRENCY: '0',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const text = (error as ConfigError).problems.join('\n');
    for (const name of [
      'NOTIFIER_RETRY_SCHEDULE',
      'NOTIFIER_ALLOWED_NETWORKS',
      'NOTIFIER_ALLOW_HTTP',
      'NOTIFIER_ENDPOINT_CONCURRENCY',
    ]) {
      expect(text).toContain(name);
    }
  });

  it('requires the admin token', () => {
    expect(() => readConfig({ SCHEMA_REGISTRY_URL: required.SCHEMA_REGISTRY_URL })).toThrow(
      /NOTIFIER_ADMIN_TOKEN is required/,
    );
  });
});
