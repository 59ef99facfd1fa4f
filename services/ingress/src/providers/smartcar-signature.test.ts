import { smartcarChallengeAnswer, smartcarHmac, verifySmartcarSignature } from './smartcar-signature';

// Known answers computed with `openssl dgst -sha256 -hmac <key>`.
const HMAC_KEY_AMT_MESSAGE_HELLO = '024282c4416782f1bfa1d9504e50c69c0f500589daeca21e3a3b5386a026de3d';
const HMAC_KEY_HELLO_MESSAGE_AMT = '1659b5190dd57878259a3e493d9f7e189af8390d78265f4ddb97b66e7a11617c';

describe('Smartcar signatures', () => {
  it('is hex HMAC-SHA256 keyed with the management token', () => {
    expect(smartcarHmac('amt', 'hello')).toBe(HMAC_KEY_AMT_MESSAGE_HELLO);
  });

  it('answers VERIFY with HMAC(key = AMT, message = challenge), not the swapped form', () => {
    expect(smartcarChallengeAnswer('amt', 'hello')).toEqual({ challenge: HMAC_KEY_AMT_MESSAGE_HELLO });
    expect(smartcarChallengeAnswer('amt', 'hello').challenge).not.toBe(HMAC_KEY_HELLO_MESSAGE_AMT);
  });

  const body = Buffer.from('{"eventId":"e1","eventType":"VEHICLE_STATE"}');
  const good = smartcarHmac('amt', body);

  it.each([
    ['the right signature', good, true],
    ['the right signature in upper case', good.toUpperCase(), true],
    ['the right signature with surrounding spaces', ` ${good} `, true],
    ['a signature made with another token', smartcarHmac('other', body), false],
    ['a truncated signature', good.slice(0, 62), false],
    ['a signature with non-hex characters', `${good.slice(0, 63)}z`, false],
    ['an empty header', '', false],
  ])('%s -> %s', (_case, header, expected) => {
    expect(verifySmartcarSignature('amt', body, header)).toBe(expected);
  });

  it('refuses a body changed after signing, even by one byte', () => {
    const tampered = Buffer.from(body);
    tampered[tampered.length - 2] = 0x58;
    expect(verifySmartcarSignature('amt', tampered, good)).toBe(false);
  });
});
