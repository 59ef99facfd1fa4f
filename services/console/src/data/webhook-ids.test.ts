import { createHash } from 'node:crypto';
import type { ChargingSession, VehicleTelemetry } from '@ampflow/contracts';
import { messageId, webhookCandidates } from './webhook-ids';

function base32Decode(text: string): Buffer {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  let bits = '';
  for (const ch of text) bits += alphabet.indexOf(ch).toString(2).padStart(5, '0');
  const bytes: number[] = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

describe('messageId', () => {
  it('is the notifier derivation: msg_ + base32 of the first 160 bits of sha256(source \\n type)', () => {
    const id = messageId('smartcar:e1', 'vehicle.telemetry');
    expect(id).toMatch(/^msg_[a-z2-7]{32}$/);
    const digest = createHash('sha256').update('smartcar:e1\nvehicle.telemetry').digest();
    expect(base32Decode(id.slice(4))).toEqual(digest.subarray(0, 20));
  });
});

describe('webhookCandidates', () => {
  it('a telemetry reading with a plug state may also have fired a plug event (not certain)', () => {
    const value = { eventId: 'smartcar:e1', isPluggedIn: true } as VehicleTelemetry;
    const found = webhookCandidates({ stream: 'ev.vehicle-telemetry.v1', value });
    expect(found.map((c) => [c.type, c.certain])).toEqual([
      ['vehicle.telemetry', true],
      ['vehicle.plugged_in', false],
      ['vehicle.unplugged', false],
    ]);
    expect(found[0]!.messageId).toBe(messageId('smartcar:e1', 'vehicle.telemetry'));
  });

  it('a reading without a plug state makes only vehicle.telemetry', () => {
    const value = { eventId: 'smartcar:e1', isPluggedIn: null } as VehicleTelemetry;
    expect(webhookCandidates({ stream: 'ev.vehicle-telemetry.v1', value }).map((c) => c.type)).toEqual([
      'vehicle.telemetry',
    ]);
  });

  it('a session change is keyed by <sessionId>:<version>', () => {
    const value = { sessionId: 's1', version: 3, change: 'ENDED' } as ChargingSession;
    expect(webhookCandidates({ stream: 'ev.charging-sessions.v1', value })).toEqual([
      {
        messageId: messageId('s1:3', 'charging_session.ended'),
        type: 'charging_session.ended',
        sourceId: 's1:3',
        certain: true,
      },
    ]);
  });
});
