import { z } from 'zod';
import {
  smartcarLegacyVerify,
  smartcarUnknownEvent,
  smartcarVehicleError,
  smartcarVehicleState,
  smartcarVerify,
  telematicaSchemas,
  telematicaUnknownEvent,
} from '@ampflow/contracts';
import {
  fixtureBytes,
  fixtureJson,
  fixtureNames,
  seededRandom,
  smartcarHeaders,
  svixHeaders,
} from '@ampflow/testing';
import { AppError } from '@ampflow/runtime';
import { smartcarHmac } from './providers/smartcar-signature';
import { createHmac } from 'node:crypto';
import {
  createTelematicaVerifier,
  interpretSmartcar,
  interpretTelematica,
  type Intake,
} from './webhook-intake';

const AMT = 'test-management-token';
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const OLD_SECRET = 'whsec_plJ3nmyCDGBKInavdOK15jsl';

function errorOf(fn: () => unknown): AppError {
  try {
    fn();
  } catch (e) {
    if (e instanceof AppError) return e;
    throw e;
  }
  throw new Error('expected an error');
}

const smartcar = (body: Buffer | string, headers = smartcarHeaders(body, AMT)) =>
  interpretSmartcar(AMT, Buffer.from(body), headers);

describe('Smartcar intake', () => {
  it.each([
    ['smartcar/vehicle-state-guide.json', 'a7738a15-7ee2-40b3-9815-823d146230cd', 'VEHICLE_STATE'],
    ['smartcar/vehicle-state-v4.json', '5a537912-9ad3-424b-ba33-65a1704567e9', 'VEHICLE_STATE'],
    ['smartcar/vehicle-state-responses.json', '9f1a1c33-0c3f-4a51-9d0f-2c7f8a4b1e20', 'VEHICLE_STATE'],
    ['smartcar/vehicle-error.json', 'c3a0f6e2-9d84-4b1f-8e43-6c2a7f0d5b19', 'VEHICLE_ERROR'],
  ])('accepts %s keyed by the vehicle id', (name, eventId, eventType) => {
    expect(smartcar(fixtureBytes(name))).toEqual<Intake>({
      kind: 'event',
      provider: 'smartcar',
      eventId,
      eventType,
      key: '829e30ab-5a13-40b5-9f8a-8538af86ed95',
      knownType: true,
    });
  });

  it('answers the current VERIFY form with the HMAC of the challenge', () => {
    const body = fixtureBytes('smartcar/verify.json');
    expect(smartcar(body)).toEqual({
      kind: 'challenge',
      provider: 'smartcar',
      answer: { challenge: smartcarHmac(AMT, 'a1b2c3d4-challenge') },
    });
  });

  it('answers the legacy (v2) verify form', () => {
    const intake = smartcar(fixtureBytes('smartcar/verify-legacy.json'));
    expect(intake).toEqual({
      kind: 'challenge',
      provider: 'smartcar',
      answer: { challenge: smartcarHmac(AMT, 'legacy-challenge-42') },
    });
  });

  it('does not answer an unsigned VERIFY (that would be a signing oracle)', () => {
    const body = fixtureBytes('smartcar/verify.json');
    expect(errorOf(() => interpretSmartcar(AMT, body, { 'content-type': 'application/json' })).code).toBe(
      'missing_signature',
    );
  });

  it('publishes a validly signed unknown event type, marked unknown', () => {
    const body = JSON.stringify({
      eventId: 'e-9',
      eventType: 'VEHICLE_TRIP',
      data: { vehicle: { id: 'v-1' } },
    });
    expect(smartcar(body)).toMatchObject({
      kind: 'event',
      eventType: 'VEHICLE_TRIP',
      key: 'v-1',
      knownType: false,
    });
  });

  it.each<[string, string | Buffer, Record<string, string> | undefined, number, string]>([
    ['missing signature header', '{}', { 'content-type': 'application/json' }, 401, 'missing_signature'],
    ['signature from another token', '{}', smartcarHeaders('{}', 'wrong-token'), 401, 'invalid_signature'],
    ['empty body', '', undefined, 400, 'malformed_json'],
    ['truncated JSON', '{"eventId":"e1","eventType":"VEHI', undefined, 400, 'malformed_json'],
    [
      'the guide example as printed (trailing comma)',
      fixtureBytes('smartcar/vehicle-state-guide.verbatim.txt'),
      undefined,
      400,
      'malformed_json',
    ],
    ['a JSON array', '[1,2]', undefined, 400, 'invalid_payload'],
    [
      'VEHICLE_STATE without signals',
      '{"eventId":"e","eventType":"VEHICLE_STATE","data":{"vehicle":{"id":"v"}}}',
      undefined,
      400,
      'invalid_payload',
    ],
    [
      'VEHICLE_STATE naming no vehicle or user',
      '{"eventId":"e","eventType":"VEHICLE_STATE","data":{"signals":[]}}',
      undefined,
      400,
      'invalid_payload',
    ],
    [
      'VEHICLE_ERROR with an unknown state',
      '{"eventId":"e","eventType":"VEHICLE_ERROR","data":{"vehicle":{"id":"v"},"errors":[{"type":"X","state":"BROKEN"}]}}',
      undefined,
      400,
      'invalid_payload',
    ],
    ['an event without eventId', '{"eventType":"VEHICLE_TRIP"}', undefined, 400, 'invalid_payload'],
  ])('refuses %s', (_case, body, headers, status, code) => {
    const error = errorOf(() => smartcar(body, headers ?? smartcarHeaders(body, AMT)));
    expect({ status: error.httpStatus, code: error.code, retriable: error.retriable }).toEqual({
      status,
      code,
      retriable: false,
    });
  });

  it('refuses a body tampered after signing', () => {
    const body = fixtureBytes('smartcar/vehicle-state-guide.json');
    const headers = smartcarHeaders(body, AMT);
    const tampered = Buffer.from(body.toString().replace('"value": true', '"value": false'));
    expect(tampered.equals(body)).toBe(false);
    expect(errorOf(() => smartcar(tampered, headers)).code).toBe('invalid_signature');
  });

  it('names the failing field in a schema error without echoing values', () => {
    const body =
      '{"eventId":"e","eventType":"VEHICLE_STATE","data":{"vehicle":{"id":"v","year":"twenty-twenty"},"signals":[]}}';
    const error = errorOf(() => smartcar(body));
    expect(error.message).toContain('data.vehicle.year');
    expect(error.message).not.toContain('twenty-twenty');
  });
});

describe('Telematica intake (Svix)', () => {
  const verifier = createTelematicaVerifier([SECRET]);

  it('verifies the PROVIDERS.md test vector', () => {
    // The library checks the timestamp against the clock: stand 30 s after the vector was signed.
    jest.useFakeTimers({ now: 1731705121 * 1000 + 30_000 });
    const vector = createTelematicaVerifier([OLD_SECRET]);
    const body = Buffer.from('{"event_type":"ping","data":{"success":true}}');
    const headers = {
      'svix-id': 'msg_loFOjxBNrRLzqYUf',
      'svix-timestamp': '1731705121',
      'svix-signature': 'v1,rAvfW3dJ/X/qxhsaXPOyyCGmRKsaKWcsNccKXlIktD0=',
    };
    expect(() => vector.verify(body, headers)).not.toThrow();
    const tampered = Buffer.from('{"event_type":"ping","data":{"success":false}}');
    expect(errorOf(() => vector.verify(tampered, headers)).code).toBe('invalid_signature');
    jest.useRealTimers();
  });

  const expectedKeys: Record<string, string> = {
    'telematica/charger-charging-command.json': '64253244f8057090fb3a822b',
    'telematica/vehicle-charging-command.json': '64253244f8057090fb3a822b',
    'telematica/user-devices-connected.json': 'user-id-in-your-database',
    'telematica/user-devices-connected-legacy.json': 'user-id-in-your-database',
    'telematica/user-devices-disconnected.json': 'user-id-in-your-database',
    'telematica/vehicle-charging-status.json': '641aeef260d202219c22f03b',
    'telematica/vehicle-plug-status.json': '641aeef260d202219c22f03b',
    'telematica/vehicle-soc.json': '641aeef260d202219c22f03b',
  };

  it('has a key expectation for every Telematica fixture', () => {
    expect(Object.keys(expectedKeys).sort()).toEqual(fixtureNames('telematica'));
  });

  it.each(Object.entries(expectedKeys))('accepts %s with svix-* headers', (name, key) => {
    const body = fixtureBytes(name);
    const headers = svixHeaders(body, SECRET, { id: 'msg_1' });
    expect(interpretTelematica(verifier, body, headers)).toEqual<Intake>({
      kind: 'event',
      provider: 'telematica',
      eventId: 'msg_1',
      eventType: fixtureJson<{ type: string }>(name).type,
      key,
      knownType: true,
    });
  });

  it('accepts the unbranded webhook-* headers', () => {
    const body = fixtureBytes('telematica/vehicle-soc.json');
    const headers = svixHeaders(body, SECRET, { id: 'msg_2', branded: false });
    expect(Object.keys(headers)).toContain('webhook-signature');
    expect(interpretTelematica(verifier, body, headers)).toMatchObject({
      eventId: 'msg_2',
      eventType: 'vehicle.soc',
    });
  });

  it('accepts either secret during rotation, and only those', () => {
    const body = fixtureBytes('telematica/vehicle-soc.json');
    const rotating = createTelematicaVerifier([SECRET, OLD_SECRET]);
    expect(interpretTelematica(rotating, body, svixHeaders(body, OLD_SECRET))).toMatchObject({
      kind: 'event',
    });
    expect(interpretTelematica(rotating, body, svixHeaders(body, SECRET))).toMatchObject({ kind: 'event' });
    expect(errorOf(() => interpretTelematica(verifier, body, svixHeaders(body, OLD_SECRET))).code).toBe(
      'invalid_signature',
    );
  });

  it('accepts a header carrying several signatures when one matches', () => {
    const body = fixtureBytes('telematica/vehicle-soc.json');
    const headers = svixHeaders(body, SECRET, { id: 'msg_3' });
    const other = svixHeaders(body, OLD_SECRET, { id: 'msg_3' });
    headers['svix-signature'] = `${other['svix-signature']} ${headers['svix-signature']}`;
    expect(interpretTelematica(verifier, body, headers)).toMatchObject({ eventId: 'msg_3' });
  });

  it('publishes an unknown event type that names its type', () => {
    const body = Buffer.from('{"type":"vehicle.odometer","vehicleId":"v-7"}');
    expect(interpretTelematica(verifier, body, svixHeaders(body, SECRET))).toMatchObject({
      eventType: 'vehicle.odometer',
      key: 'v-7',
      knownType: false,
    });
  });

  const signed = (body: string, options?: Parameters<typeof svixHeaders>[2]) =>
    svixHeaders(body, SECRET, options);
  const soc = fixtureBytes('telematica/vehicle-soc.json').toString();

  it.each<[string, string, Record<string, string>, number, string]>([
    ['missing headers', soc, { 'content-type': 'application/json' }, 401, 'missing_signature'],
    [
      'a timestamp 6 minutes old',
      soc,
      signed(soc, { timestamp: new Date(Date.now() - 6 * 60_000) }),
      401,
      'stale_timestamp',
    ],
    [
      'a timestamp 6 minutes ahead',
      soc,
      signed(soc, { timestamp: new Date(Date.now() + 6 * 60_000) }),
      401,
      'stale_timestamp',
    ],
    ['a signature from another secret', soc, svixHeaders(soc, OLD_SECRET), 401, 'invalid_signature'],
    ['an empty body', '', signed(''), 400, 'malformed_json'],
    ['truncated JSON', soc.slice(0, 40), signed(soc.slice(0, 40)), 400, 'malformed_json'],
    ['a JSON string', '"vehicle.soc"', signed('"vehicle.soc"'), 400, 'invalid_payload'],
    [
      'vehicle.soc without currentSoc',
      '{"type":"vehicle.soc","vehicleId":"v","vehicleState":{}}',
      signed('{"type":"vehicle.soc","vehicleId":"v","vehicleState":{}}'),
      400,
      'invalid_payload',
    ],
    ['an event without type', '{"vehicleId":"v"}', signed('{"vehicleId":"v"}'), 400, 'invalid_payload'],
  ])('refuses %s', (_case, body, headers, status, code) => {
    const error = errorOf(() => interpretTelematica(verifier, Buffer.from(body), headers));
    expect({ status: error.httpStatus, code: error.code }).toEqual({ status, code });
  });

  it('refuses a body tampered after signing', () => {
    const headers = signed(soc);
    expect(
      errorOf(() => interpretTelematica(verifier, Buffer.from(soc.replace('40.2', '99.9')), headers)).code,
    ).toBe('invalid_signature');
  });
});

/**
 * Bodies that are not UTF-8. Signed over their exact bytes they are refused with 400; signed over the text a
 * lenient decoder makes of them (U+FFFD for each bad sequence) they are not signed at all: 401.
 */
describe('raw bytes: what is verified is what is published', () => {
  const verifier = createTelematicaVerifier([SECRET]);
  const prefix = Buffer.from('{"type":"vehicle.soc","vehicleId":"v","note":"');
  const suffix = Buffer.from(
    '","vehicleState":{"currentSoc":{"value":40,"lastUpdated":"2024-01-01T00:00:00Z"}}}',
  );
  const withBytes = (...bytes: number[]) => Buffer.concat([prefix, Buffer.from(bytes), suffix]);
  const notUtf8: [string, Buffer][] = [
    ['a lone continuation byte', withBytes(0x80)],
    ['0xFF', withBytes(0xff)],
    ['an overlong "/"', withBytes(0xc0, 0xaf)],
    ['an encoded surrogate', withBytes(0xed, 0xa0, 0x80)],
    ['a sequence cut short', withBytes(0xe2, 0x82)],
    ['a body ending inside a sequence', Buffer.concat([prefix, Buffer.from([0xf0, 0x9f, 0x98])])],
  ];

  /**
   * A Svix-format signature over exactly these bytes, computed by hand: the svix library signs text, so it
   * cannot make one for bytes that are not UTF-8. Svix itself only ever signs text.
   */
  function svixOverBytes(body: Buffer, secret = SECRET): Record<string, string> {
    const timestamp = String(Math.floor(Date.now() / 1000));
    const id = 'msg_bytes';
    const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
    const mac = createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest('base64');
    return {
      'content-type': 'application/json',
      'svix-id': id,
      'svix-timestamp': timestamp,
      'svix-signature': `v1,${mac}`,
    };
  }

  it.each(notUtf8)('Smartcar: %s, correctly signed, is refused 400 invalid_utf8', (_case, body) => {
    const error = errorOf(() => interpretSmartcar(AMT, body, smartcarHeaders(body, AMT)));
    expect({ status: error.httpStatus, code: error.code }).toEqual({ status: 400, code: 'invalid_utf8' });
  });

  it.each(notUtf8)(
    'Telematica: %s, signed as Svix signs (its text), is refused 400 invalid_utf8',
    (_case, body) => {
      const error = errorOf(() => interpretTelematica(verifier, body, svixHeaders(body, SECRET)));
      expect({ status: error.httpStatus, code: error.code }).toEqual({ status: 400, code: 'invalid_utf8' });
    },
  );

  it.each(notUtf8)(
    '%s with a signature over other bytes than the body is refused 401 for both providers',
    (_c, body) => {
      const roundTrip = Buffer.from(body.toString('utf8'));
      expect(roundTrip.equals(body)).toBe(false);
      const smartcarError = errorOf(() => interpretSmartcar(AMT, body, smartcarHeaders(roundTrip, AMT)));
      expect(smartcarError.httpStatus).toBe(401);
      expect(smartcarError.code).toBe('invalid_signature');
      // Telematica: a signature over the raw bytes is not one over any text the library can check; and one
      // over the text (previous test) meets the strict decode. Either way nothing invalid is accepted.
      const telematicaError = errorOf(() => interpretTelematica(verifier, body, svixOverBytes(body)));
      expect(telematicaError.httpStatus).toBe(401);
      expect(telematicaError.code).toBe('invalid_signature');
    },
  );

  it('answers 401, not 400, to an unsigned or wrongly signed body that is not UTF-8', () => {
    const body = notUtf8[0]![1];
    expect(
      errorOf(() => interpretSmartcar(AMT, body, { 'content-type': 'application/json' })).httpStatus,
    ).toBe(401);
    expect(errorOf(() => interpretSmartcar(AMT, body, smartcarHeaders(body, 'other'))).httpStatus).toBe(401);
    expect(
      errorOf(() => interpretTelematica(verifier, body, svixOverBytes(body, OLD_SECRET))).httpStatus,
    ).toBe(401);
  });

  it('accepts multi-byte UTF-8 signed by the svix library, and keeps refusing a byte-order mark as before', () => {
    const text = '{"type":"vehicle.odometer","vehicleId":"Zoë-🚗-€"}';
    const body = Buffer.from(text);
    expect(interpretTelematica(verifier, body, svixHeaders(text, SECRET))).toMatchObject({ key: 'Zoë-🚗-€' });
    expect(
      interpretSmartcar(
        AMT,
        Buffer.from('{"eventId":"é","eventType":"X"}'),
        smartcarHeaders('{"eventId":"é","eventType":"X"}', AMT),
      ),
    ).toMatchObject({ eventId: 'é' });
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), body]);
    expect(errorOf(() => interpretTelematica(verifier, bom, svixOverBytes(bom))).code).toBe('malformed_json');
  });
});

describe('the compiled provider schemas (z.compile, used for valid bodies)', () => {
  const schemas = [
    smartcarVehicleState,
    smartcarVehicleError,
    smartcarUnknownEvent,
    smartcarVerify,
    smartcarLegacyVerify,
    telematicaUnknownEvent,
    ...Object.values(telematicaSchemas),
  ] as z.ZodType[];
  const fixtures = [...fixtureNames('smartcar'), ...fixtureNames('telematica')]
    .filter((name) => name.endsWith('.json'))
    .map((name) => fixtureJson<Record<string, unknown>>(name));
  const oddValues = [null, undefined, 0, 1.5, -1, '', 'x', true, {}, [], ['x'], { code: 1 }];

  /** A copy of `body` with one value somewhere in it replaced (or deleted when undefined). */
  function mutate(r: ReturnType<typeof seededRandom>, body: unknown): unknown {
    const copy = JSON.parse(JSON.stringify(body)) as Record<string, unknown>;
    let node: Record<string, unknown> = copy;
    for (;;) {
      const keys = Object.keys(node);
      if (keys.length === 0) return copy;
      const key = r.pick(keys);
      const child = node[key];
      if (child !== null && typeof child === 'object' && r.chance(0.6)) {
        node = child as Record<string, unknown>;
        continue;
      }
      const value = r.pick(oddValues);
      if (value === undefined) delete node[key];
      else node[key] = value;
      return copy;
    }
  }

  it('property: validate agrees with safeParse, and a valid body parses to itself (no transforms, no defaults)', () => {
    const seed = Number(process.env.AMPFLOW_PROPERTY_SEED ?? 16_2026);
    const r = seededRandom(seed);
    const compiled = new Map(schemas.map((schema) => [schema, z.compile(schema)]));
    const verdicts = { valid: 0, invalid: 0 };
    for (let i = 0; i < 4_000; i++) {
      const schema = r.pick(schemas);
      const body = i < fixtures.length * 4 ? fixtures[i % fixtures.length] : mutate(r, r.pick(fixtures));
      const parsed = schema.safeParse(body);
      if (compiled.get(schema)!.validate(body) !== parsed.success) {
        throw new Error(
          `seed ${seed}, case ${i}: validate and safeParse disagree on ${JSON.stringify(body)}`,
        );
      }
      if (parsed.success) expect(parsed.data).toEqual(body);
      verdicts[parsed.success ? 'valid' : 'invalid'] += 1;
    }
    expect(verdicts.valid).toBeGreaterThan(200);
    expect(verdicts.invalid).toBeGreaterThan(200);
  });
});
