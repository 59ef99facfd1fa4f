import { Webhook } from 'svix';
import { svixKey, svixSignature, verifySvixSignature } from './svix-signature';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const key = svixKey(SECRET);
const NOW_MS = 1_731_705_121_000;
const ts = String(NOW_MS / 1000);

describe('Svix signatures over raw bytes', () => {
  it('matches the PROVIDERS.md test vector', () => {
    const body = Buffer.from('{"event_type":"ping","data":{"success":true}}');
    expect(
      svixSignature(svixKey('whsec_plJ3nmyCDGBKInavdOK15jsl'), 'msg_loFOjxBNrRLzqYUf', '1731705121', body),
    ).toBe('rAvfW3dJ/X/qxhsaXPOyyCGmRKsaKWcsNccKXlIktD0=');
  });

  it.each(['{"a":1}', '{"name":"Zoë 🚗 €"}', ''])(
    'agrees with the svix library for valid UTF-8: %s',
    (text) => {
      const library = new Webhook(SECRET).sign('msg_1', new Date(NOW_MS), text);
      expect(`v1,${svixSignature(key, 'msg_1', ts, Buffer.from(text))}`).toBe(library);
    },
  );

  const body = Buffer.from('{"a":1}');
  const good = `v1,${svixSignature(key, 'msg_1', ts, body)}`;
  const check = (signature: string, timestamp = ts, nowMs = NOW_MS, b = body) =>
    verifySvixSignature(
      [svixKey('whsec_plJ3nmyCDGBKInavdOK15jsl'), key],
      { id: 'msg_1', timestamp, signature },
      b,
      nowMs,
    );

  it.each<[string, string, string, number, string]>([
    ['the right signature', good, ts, NOW_MS, 'valid'],
    ['one of several signatures', `v1,AAAA ${good} v1,BBBB`, ts, NOW_MS, 'valid'],
    ['the right MAC under another version', good.replace('v1,', 'v2,'), ts, NOW_MS, 'invalid_signature'],
    ['the right MAC without padding', good.replace(/=+$/, ''), ts, NOW_MS, 'invalid_signature'],
    ['an empty header', '', ts, NOW_MS, 'invalid_signature'],
    ['5 minutes old', good, ts, NOW_MS + 300_000, 'valid'],
    ['over 5 minutes old', good, ts, NOW_MS + 301_000, 'stale_timestamp'],
    ['over 5 minutes ahead', good, ts, NOW_MS - 301_000, 'stale_timestamp'],
    ['a timestamp that is not digits', good, `${ts}.5`, NOW_MS, 'stale_timestamp'],
    ['a negative timestamp', good, `-${ts}`, NOW_MS, 'stale_timestamp'],
  ])('%s -> %s', (_case, signature, timestamp, nowMs, verdict) => {
    expect(check(signature, timestamp, nowMs)).toBe(verdict);
  });

  it('binds the id and the timestamp', () => {
    expect(verifySvixSignature([key], { id: 'msg_2', timestamp: ts, signature: good }, body, NOW_MS)).toBe(
      'invalid_signature',
    );
    const later = String(Number(ts) + 1);
    expect(check(good, later)).toBe('invalid_signature');
  });

  it('is over bytes: one changed byte that decodes to the same text still fails', () => {
    const a = Buffer.from([0x7b, 0x22, 0x80, 0x22, 0x7d]); // {"<bad>"}
    const b = Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d]); // both read as {"\uFFFD"}
    expect(a.toString()).toBe(b.toString());
    const signedA = `v1,${svixSignature(key, 'msg_1', ts, a)}`;
    expect(check(signedA, ts, NOW_MS, a)).toBe('valid');
    expect(check(signedA, ts, NOW_MS, b)).toBe('invalid_signature');
  });
});
