import type { ChargingSession, VehicleTelemetry } from '@ampflow/contracts';
import { messageId, webhookCandidates } from './webhook-ids';

// messageId itself is tested with the contract (packages/contracts/src/message-id.test.ts).
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
