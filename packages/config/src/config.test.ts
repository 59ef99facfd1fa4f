import { ConfigError, issuedSecret, loadConfig, secret, sharedEnv, port, flag, z } from './index';

const schema = z.object({ ...sharedEnv, TOKEN: secret(), HTTP_PORT: port(8080), VERBOSE: flag(false) });

describe('loadConfig', () => {
  it('applies defaults and parses typed values', () => {
    const config = loadConfig(schema, { TOKEN: 't', KAFKA_BROKERS: 'a:1, b:2', HTTP_PORT: '9000' });
    expect(config).toEqual({
      KAFKA_BROKERS: ['a:1', 'b:2'],
      KAFKA_TOPIC_PREFIX: '',
      LOG_LEVEL: 'info',
      TOKEN: 't',
      HTTP_PORT: 9000,
      VERBOSE: false,
    });
  });

  it('reports every bad variable at once, by name, without echoing values', () => {
    let error: unknown;
    try {
      loadConfig(schema, { TOKEN: '   ', KAFKA_BROKERS: 'no-port-s3cr3t', HTTP_PORT: '70000' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toHaveLength(3);
    expect(problems.join('\n')).toMatch(/TOKEN is required but not set/);
    expect(problems.join('\n')).toMatch(/KAFKA_BROKERS/);
    expect(problems.join('\n')).toMatch(/HTTP_PORT/);
    expect((error as Error).message).not.toContain('s3cr3t');
  });

  it('treats an empty secret as missing', () => {
    expect(() => loadConfig(schema, { TOKEN: '' })).toThrow(/TOKEN is required/);
  });

  it('refuses an issued secret shorter than 32 characters, naming it without its value', () => {
    const issued = z.object({ ADMIN_TOKEN: issuedSecret() });
    const short = 'x'.repeat(31);
    let error: unknown;
    try {
      loadConfig(issued, { ADMIN_TOKEN: short });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      'ADMIN_TOKEN: must be at least 32 characters; generate one with `openssl rand -hex 32`',
    ]);
    expect((error as Error).message).not.toContain(short);
    expect(loadConfig(issued, { ADMIN_TOKEN: 'x'.repeat(32) }).ADMIN_TOKEN).toHaveLength(32);
    expect(() => loadConfig(issued, {})).toThrow(/ADMIN_TOKEN is required but not set/);
  });
});
