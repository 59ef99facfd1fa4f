import { REDACTED, redact } from './redact';

describe('redact', () => {
  it('replaces VINs, positions and secrets at any depth and keeps everything else', () => {
    const record = {
      eventId: 'smartcar:e1',
      vehicle: { make: 'Tesla', vin: '5YJ3E1EA7KF000001' },
      location: { latitude: 52.1, longitude: 4.3 },
      devices: [{ deviceId: 'd1', VIN: 'WVW000' }],
      secret: 'whsec_x',
      stateOfChargePercent: 55,
    };
    expect(redact(record)).toEqual({
      eventId: 'smartcar:e1',
      vehicle: { make: 'Tesla', vin: REDACTED },
      location: { latitude: REDACTED, longitude: REDACTED },
      devices: [{ deviceId: 'd1', VIN: REDACTED }],
      secret: REDACTED,
      stateOfChargePercent: 55,
    });
    expect(record.vehicle.vin).toBe('5YJ3E1EA7KF000001');
  });

  it('leaves a null VIN null (nothing to hide)', () => {
    expect(redact({ vin: null })).toEqual({ vin: null });
  });
});
