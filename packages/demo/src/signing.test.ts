import { createHmac } from 'node:crypto';
import { Webhook } from 'svix';
import { signDelivery, signingSecret, smartcarHeaders, svixHeaders } from './signing';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const OTHER = 'whsec_plJ3nmyCDGBKInavdOK15jsl';

describe('signing', () => {
  it('signs Smartcar bodies with the hex HMAC-SHA256 of the management token', () => {
    const body = '{"eventId":"e1","eventType":"VEHICLE_STATE"}';
    expect(smartcarHeaders(body, 'amt')['sc-signature']).toBe(
      createHmac('sha256', 'amt').update(body).digest('hex'),
    );
  });

  it('signs Telematica bodies as Svix does, verifiable with svix for the given id', () => {
    const body = '{"type":"vehicle.soc"}';
    const headers = svixHeaders(body, SECRET, 'msg_1', new Date());
    expect(headers['svix-id']).toBe('msg_1');
    expect(new Webhook(SECRET).verify(body, headers)).toEqual({ type: 'vehicle.soc' });
    expect(() => new Webhook(OTHER).verify(body, headers)).toThrow();
  });

  it('signs with the first secret during a rotation', () => {
    expect(signingSecret(`${SECRET}, ${OTHER}`)).toBe(SECRET);
    expect(signingSecret(`${OTHER} ${SECRET}`)).toBe(OTHER);
  });

  it('picks the provider’s scheme for a delivery', () => {
    const secrets = { smartcarManagementToken: 'amt', telematicaWebhookSecret: SECRET };
    const now = new Date();
    expect(
      signDelivery({ provider: 'smartcar', providerEventId: 'e1', body: '{}' }, secrets, now),
    ).toHaveProperty('sc-signature');
    expect(
      signDelivery({ provider: 'telematica', providerEventId: 'msg_2', body: '{}' }, secrets, now)['svix-id'],
    ).toBe('msg_2');
  });
});
