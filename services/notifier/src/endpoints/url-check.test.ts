import { ValidationError } from '@ampflow/runtime';
import { createAddressPolicy } from '../delivery/ssrf-guard';
import { createUrlCheck } from './url-check';

function refusal(check: (url: string) => void, url: string): ValidationError {
  try {
    check(url);
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return error as ValidationError;
  }
  throw new Error(`expected ${url} to be refused`);
}

describe('createUrlCheck', () => {
  const strict = createUrlCheck({ policy: createAddressPolicy([]), allowHttp: false });
  const local = createUrlCheck({ policy: createAddressPolicy(['127.0.0.0/8', '::1/128']), allowHttp: true });

  it('accepts https host names and public addresses by default', () => {
    expect(() => strict('https://hooks.example.com/a')).not.toThrow();
    expect(() => strict('https://8.8.8.8/a')).not.toThrow();
  });

  it.each([
    ['http without NOTIFIER_ALLOW_HTTP', 'http://hooks.example.com/a'],
    ['loopback', 'https://127.0.0.1/a'],
    ['a private address', 'https://10.1.2.3/a'],
    ['cloud metadata', 'https://169.254.169.254/latest'],
    ['IPv4-mapped loopback', 'https://[::ffff:127.0.0.1]/a'],
    ['a decimal loopback', 'https://2130706433/a'],
  ])('refuses %s with 400 destination_refused', (_what, url) => {
    const error = refusal(strict, url);
    expect(error.code).toBe('destination_refused');
    expect(error.httpStatus).toBe(400);
    expect(error.message).toMatch(/^url: destination .* refused/);
  });

  it('allows http and allow-listed networks when configured, and still refuses the rest', () => {
    expect(() => local('http://127.0.0.1:9000/hook')).not.toThrow();
    expect(() => local('http://[::1]:9000/hook')).not.toThrow();
    expect(refusal(local, 'http://192.168.1.1/hook').code).toBe('destination_refused');
  });
});
