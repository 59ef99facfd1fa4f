import { ConfigError } from '@ampflow/config';
import { parseSecretsFile, readDemoConfig, secretsFilePath, withSecretsFrom } from './config';

describe('demo configuration', () => {
  it('reads the dev secrets file as run-platform.sh writes it, values after the first "="', () => {
    expect(
      parseSecretsFile(
        '# generated\nSMARTCAR_MANAGEMENT_TOKEN=dev-abc\n\nTELEMATICA_WEBHOOK_SECRET=whsec_YWJj==\n',
      ),
    ).toEqual({
      SMARTCAR_MANAGEMENT_TOKEN: 'dev-abc',
      TELEMATICA_WEBHOOK_SECRET: 'whsec_YWJj==',
    });
  });

  it('prefers the environment and takes only the secrets from the file', () => {
    const merged = withSecretsFrom(
      { SMARTCAR_MANAGEMENT_TOKEN: 'from-env' },
      { SMARTCAR_MANAGEMENT_TOKEN: 'from-file', NOTIFIER_ADMIN_TOKEN: 'admin', KAFKA_BROKERS: 'elsewhere:1' },
    );
    expect(merged).toEqual({ SMARTCAR_MANAGEMENT_TOKEN: 'from-env', NOTIFIER_ADMIN_TOKEN: 'admin' });
  });

  it('finds the file under AMPFLOW_STATE_DIR, else .ampflow/', () => {
    expect(secretsFilePath({}, '/repo')).toBe('/repo/.ampflow/dev-secrets.env');
    expect(secretsFilePath({ AMPFLOW_STATE_DIR: '/state' }, '/repo')).toBe('/state/dev-secrets.env');
  });

  it('defaults to the platform npm start runs on loopback', () => {
    const config = readDemoConfig(
      { SMARTCAR_MANAGEMENT_TOKEN: 'a', TELEMATICA_WEBHOOK_SECRET: 'b', NOTIFIER_ADMIN_TOKEN: 'c' },
      '/nonexistent',
    );
    expect(config).toMatchObject({
      DEMO_INGRESS_URL: 'http://127.0.0.1:8080',
      DEMO_NOTIFIER_URL: 'http://127.0.0.1:8090',
      KAFKA_BROKERS: ['127.0.0.1:9092'],
      SCHEMA_REGISTRY_URL: 'http://127.0.0.1:8081/apis/ccompat/v7',
      DEMO_TIMEOUT_MS: 60_000,
    });
  });

  it('names every missing secret and prints no value', () => {
    let error: unknown;
    try {
      readDemoConfig({ SMARTCAR_MANAGEMENT_TOKEN: 'sekrit-value', DEMO_TIMEOUT_MS: 'soon' }, '/nonexistent');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toContain('TELEMATICA_WEBHOOK_SECRET is required');
    expect(message).toContain('NOTIFIER_ADMIN_TOKEN is required');
    expect(message).toContain('DEMO_TIMEOUT_MS');
    expect(message).not.toContain('sekrit-value');
  });
});
