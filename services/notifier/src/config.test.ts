import { ConfigError } from '@ampflow/config';
import { readConfig } from './config';

const KEY_HEX = '0f'.repeat(32);
const KEY_BASE64 = Buffer.alloc(32, 9).toString('base64');

const required = {
  NOTIFIER_ADMIN_TOKEN: 'test-admin-token-0123456789abcdef',
  NOTIFIER_SECRETS_KEY: `k2:${KEY_HEX}`,
  SCHEMA_REGISTRY_URL: 'http://127.0.0.1:8081/apis/ccompat/v7',
};

function problems(env: Record<string, string>): string[] {
  try {
    readConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return [...(error as ConfigError).problems];
  }
  throw new Error('expected a ConfigError');
}

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

  it('refuses an admin token shorter than 32 characters, without repeating it', () => {
    const short = 'short-admin-token-31-characters';
    expect(problems({ ...required, NOTIFIER_ADMIN_TOKEN: short })).toEqual([
      'NOTIFIER_ADMIN_TOKEN: must be at least 32 characters; generate one with `openssl rand -hex 32`',
    ]);
    expect(readConfig({ ...required, NOTIFIER_ADMIN_TOKEN: `${short}x` }).NOTIFIER_ADMIN_TOKEN).toHaveLength(
      32,
    );
  });

  it('requires the secrets key: no default', () => {
    const { NOTIFIER_SECRETS_KEY: _key, ...withoutKey } = required;
    expect(problems(withoutKey)).toEqual(['NOTIFIER_SECRETS_KEY is required but not set']);
  });

  it('reads the secrets keys as key id and 32 bytes, hex or base64', () => {
    const config = readConfig({ ...required, NOTIFIER_SECRETS_KEY_PREVIOUS: `k1:${KEY_BASE64}` });
    expect(config.NOTIFIER_SECRETS_KEY.kid).toBe('k2');
    expect(config.NOTIFIER_SECRETS_KEY.key.export().toString('hex')).toBe(KEY_HEX);
    expect(config.NOTIFIER_SECRETS_KEY_PREVIOUS?.kid).toBe('k1');
    expect(config.NOTIFIER_SECRETS_KEY_PREVIOUS?.key.export()).toEqual(Buffer.alloc(32, 9));
    expect(readConfig(required).NOTIFIER_SECRETS_KEY_PREVIOUS).toBeUndefined();
  });

  it.each([
    ['no key id', KEY_HEX],
    ['16 bytes', `k2:${'0f'.repeat(16)}`],
    ['33 bytes of base64', `k2:${Buffer.alloc(33, 1).toString('base64')}`],
    ['a passphrase', 'k2:correct horse battery staple'],
  ])('refuses a secrets key with %s, without repeating it', (_what, value) => {
    const [problem, ...others] = problems({ ...required, NOTIFIER_SECRETS_KEY: value });
    expect(others).toEqual([]);
    expect(problem).toMatch(/^NOTIFIER_SECRETS_KEY: .*32 bytes/);
    expect(problem).not.toContain(value.slice(3));
  });

  it('refuses a previous key with the id of the current one', () => {
    expect(problems({ ...required, NOTIFIER_SECRETS_KEY_PREVIOUS: `k2:${KEY_BASE64}` })).toEqual([
      'NOTIFIER_SECRETS_KEY_PREVIOUS: has the same key id as NOTIFIER_SECRETS_KEY; give the new key a new id',
    ]);
  });
});
