import { readConfig } from './config';

const secrets = { NOTIFIER_ADMIN_TOKEN: 'a'.repeat(32), CONSOLE_SESSION_KEY: 'b'.repeat(32) };

describe('console config', () => {
  it('needs the admin token and a session key of at least 32 characters, without echoing them', () => {
    expect(() => readConfig({})).toThrow(
      /NOTIFIER_ADMIN_TOKEN is required[\s\S]*CONSOLE_SESSION_KEY is required/,
    );
    let message = '';
    try {
      readConfig({ ...secrets, CONSOLE_SESSION_KEY: 'short-key', SCHEMA_REGISTRY_URL: 'http://r' });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/CONSOLE_SESSION_KEY: must be at least 32 characters/);
    expect(message).not.toContain('short-key');
  });

  it('defaults to port 8088, the local notifier and the four services’ metrics', () => {
    const config = readConfig({ ...secrets, SCHEMA_REGISTRY_URL: 'http://127.0.0.1:8081' });
    expect(config.HTTP_PORT).toBe(8088);
    expect(config.NOTIFIER_URL).toBe('http://127.0.0.1:8090');
    expect(config.CONSOLE_METRICS_TARGETS.map((t) => t.service)).toEqual([
      'ingress',
      'normalizer',
      'session-aggregator',
      'notifier',
    ]);
  });

  it('refuses a malformed metrics target list', () => {
    expect(() =>
      readConfig({ ...secrets, SCHEMA_REGISTRY_URL: 'http://r', CONSOLE_METRICS_TARGETS: 'ingress' }),
    ).toThrow(/CONSOLE_METRICS_TARGETS: expected name=http/);
  });
});
