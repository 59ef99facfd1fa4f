import { createHash } from 'node:crypto';
import { messageId } from './message-id';

/** Independent RFC 4648 base32 decoder, to check the encoder against the digest it came from. */
function base32Decode(text: string): Buffer {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  let bits = '';
  for (const ch of text) bits += alphabet.indexOf(ch).toString(2).padStart(5, '0');
  const bytes: number[] = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

describe('messageId', () => {
  it('is msg_ and 32 base32 characters of the first 160 bits of sha256(source \\n type)', () => {
    const id = messageId('evt-1', 'vehicle.telemetry');
    expect(id).toMatch(/^msg_[a-z2-7]{32}$/);
    const digest = createHash('sha256').update('evt-1\nvehicle.telemetry').digest();
    expect(base32Decode(id.slice(4))).toEqual(digest.subarray(0, 20));
  });

  it('is the same for the same source and type (replays and retries carry one webhook-id)', () => {
    expect(messageId('evt-1', 'vehicle.telemetry')).toBe(messageId('evt-1', 'vehicle.telemetry'));
  });

  it.each([
    ['another type', 'evt-1', 'vehicle.plugged_in'],
    ['another source', 'evt-2', 'vehicle.telemetry'],
    ['a shifted boundary', 'evt-1\nvehicle', 'telemetry'],
  ])('differs for %s', (_case, source, type) => {
    expect(messageId(source, type)).not.toBe(messageId('evt-1', 'vehicle.telemetry'));
  });
});
