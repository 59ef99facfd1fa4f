import { bearerTokenMatcher } from './auth';

describe('bearerTokenMatcher', () => {
  const matches = bearerTokenMatcher('s3cret-token');

  it('accepts exactly the token after Bearer (scheme case-insensitive)', () => {
    expect(matches('Bearer s3cret-token')).toBe(true);
    expect(matches('bearer s3cret-token')).toBe(true);
    expect(matches('Bearer   s3cret-token ')).toBe(true);
  });

  it.each([
    ['no header', undefined],
    ['an empty header', ''],
    ['a bare token', 's3cret-token'],
    ['another scheme', 'Basic s3cret-token'],
    ['a prefix', 'Bearer s3cret-toke'],
    ['a longer token', 'Bearer s3cret-token2'],
    ['two tokens', 'Bearer s3cret-token s3cret-token'],
    ['an empty token', 'Bearer '],
  ])('refuses %s', (_what, header) => {
    expect(matches(header)).toBe(false);
  });

  it('refuses to be built with an empty token', () => {
    expect(() => bearerTokenMatcher('')).toThrow('must not be empty');
  });
});
