import { Webhook } from 'svix';
import { CUSTOMER_EVENT_TYPES } from '@ampflow/contracts';
import { ValidationError } from '@ampflow/runtime';
import {
  ENDPOINT_ID_PATTERN,
  OPERATIONAL_EVENT_TYPES,
  applyPatch,
  createEndpointSchema,
  endpointMatches,
  generateEndpointId,
  generateSecret,
  isValidSecret,
  newEndpoint,
  parseOrThrow,
  parseStoredEndpoint,
  publicView,
  updateEndpointSchema,
  withDisabled,
  withRotatedSecret,
  type Endpoint,
  type MatchableEvent,
} from './model';

const T0 = Date.parse('2025-03-01T10:00:00Z');
const T1 = Date.parse('2025-03-02T11:30:00Z');
const SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;

function anEndpoint(overrides: Partial<Endpoint> = {}): Endpoint {
  return {
    ...newEndpoint(
      parseOrThrow(createEndpointSchema, { url: 'https://hooks.example.com/ev', secret: SECRET }),
      'ep_aaaaaaaaaaaaaaaaaaaaaaaaaa',
      T0,
    ),
    ...overrides,
  };
}

function anEvent(overrides: Partial<MatchableEvent['routing']> & { type?: string } = {}): MatchableEvent {
  const { type = 'charging_session.started', ...routing } = overrides;
  return { type, routing: { provider: 'smartcar', vehicleIds: ['veh-1'], userId: 'user-1', ...routing } };
}

const operational = (type: string): MatchableEvent => ({
  type,
  routing: { provider: 'ampflow', vehicleIds: [], userId: null },
});

/** The message of the ValidationError `parse` throws. */
function refusal(parse: () => unknown): string {
  try {
    parse();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).httpStatus).toBe(400);
    return (error as ValidationError).message;
  }
  throw new Error('expected a ValidationError');
}

describe('endpointMatches', () => {
  it('matches every customer type when no type is listed, and no operational type', () => {
    const endpoint = anEndpoint();
    for (const type of CUSTOMER_EVENT_TYPES) expect(endpointMatches(endpoint, anEvent({ type }))).toBe(true);
    for (const type of OPERATIONAL_EVENT_TYPES)
      expect(endpointMatches(endpoint, operational(type))).toBe(false);
  });

  it('matches only the listed types', () => {
    const endpoint = anEndpoint({ eventTypes: ['charging_session.ended', 'endpoint.disabled'] });
    expect(endpointMatches(endpoint, anEvent({ type: 'charging_session.ended' }))).toBe(true);
    expect(endpointMatches(endpoint, anEvent({ type: 'charging_session.started' }))).toBe(false);
    expect(endpointMatches(endpoint, operational('endpoint.disabled'))).toBe(true);
    expect(endpointMatches(endpoint, operational('endpoint.recovered'))).toBe(false);
  });

  it('filters on vehicles: any of the event vehicles listed; an event about no vehicle does not match', () => {
    const endpoint = anEndpoint({ vehicleIds: ['veh-2', 'veh-3'] });
    expect(endpointMatches(endpoint, anEvent({ vehicleIds: ['veh-1', 'veh-3'] }))).toBe(true);
    expect(endpointMatches(endpoint, anEvent({ vehicleIds: ['veh-1'] }))).toBe(false);
    expect(endpointMatches(endpoint, anEvent({ vehicleIds: [] }))).toBe(false);
  });

  it('filters on users: the event user listed; an event without a user does not match', () => {
    const endpoint = anEndpoint({ userIds: ['user-2'] });
    expect(endpointMatches(endpoint, anEvent({ userId: 'user-2' }))).toBe(true);
    expect(endpointMatches(endpoint, anEvent({ userId: 'user-1' }))).toBe(false);
    expect(endpointMatches(endpoint, anEvent({ userId: null }))).toBe(false);
  });

  it('filters on providers', () => {
    const endpoint = anEndpoint({ providers: ['telematica'] });
    expect(endpointMatches(endpoint, anEvent({ provider: 'telematica' }))).toBe(true);
    expect(endpointMatches(endpoint, anEvent({ provider: 'smartcar' }))).toBe(false);
  });

  it('needs every non-empty filter to pass', () => {
    const endpoint = anEndpoint({ vehicleIds: ['veh-1'], userIds: ['user-1'], providers: ['smartcar'] });
    expect(endpointMatches(endpoint, anEvent())).toBe(true);
    expect(endpointMatches(endpoint, anEvent({ provider: 'telematica' }))).toBe(false);
    expect(endpointMatches(endpoint, anEvent({ userId: 'user-9' }))).toBe(false);
  });

  it('applies no filter to operational events', () => {
    const endpoint = anEndpoint({
      eventTypes: ['message.attempt.exhausted'],
      vehicleIds: ['veh-1'],
      userIds: ['user-1'],
      providers: ['smartcar'],
    });
    expect(endpointMatches(endpoint, operational('message.attempt.exhausted'))).toBe(true);
  });

  it('ignores whether the endpoint is enabled (its messages are kept while disabled)', () => {
    expect(endpointMatches(withDisabled(anEndpoint(), 'failing', T1), anEvent())).toBe(true);
  });
});

describe('secrets and ids', () => {
  it('generates whsec_ secrets of 32 random bytes that svix accepts', () => {
    const a = generateSecret();
    const b = generateSecret();
    expect(a).not.toBe(b);
    expect(a).toMatch(/^whsec_/);
    expect(Buffer.from(a.slice('whsec_'.length), 'base64')).toHaveLength(32);
    expect(isValidSecret(a)).toBe(true);
    const signature = new Webhook(a).sign('msg_1', new Date(T0), '{}');
    expect(signature).toMatch(/^v1,/);
  });

  it('accepts 24 to 64 bytes of canonical base64 after whsec_ and nothing else', () => {
    const of = (bytes: number) => `whsec_${Buffer.alloc(bytes, 1).toString('base64')}`;
    expect(isValidSecret(of(24))).toBe(true);
    expect(isValidSecret(of(64))).toBe(true);
    expect(isValidSecret(of(23))).toBe(false);
    expect(isValidSecret(of(65))).toBe(false);
    expect(isValidSecret(of(32).replace('whsec_', ''))).toBe(false);
    expect(isValidSecret('whsec_not base64 at all!!!!!!!!!!!!!!!!!!!!')).toBe(false);
    expect(isValidSecret(`${of(32)}==`)).toBe(false);
  });

  it('generates ep_ ids of 26 base32 characters, different each time', () => {
    const ids = new Set(Array.from({ length: 200 }, generateEndpointId));
    expect(ids.size).toBe(200);
    for (const id of ids) expect(id).toMatch(ENDPOINT_ID_PATTERN);
  });
});

describe('create schema', () => {
  it('applies defaults: no filters, all customer types, unlimited, enabled, no secret', () => {
    expect(parseOrThrow(createEndpointSchema, { url: 'https://a.example.com/hook' })).toEqual({
      url: 'https://a.example.com/hook',
      description: '',
      owner: null,
      eventTypes: [],
      vehicleIds: [],
      userIds: [],
      providers: [],
      throttleRate: null,
      enabled: true,
    });
  });

  it('accepts every field and removes repeated list entries', () => {
    const valid = parseOrThrow(createEndpointSchema, {
      url: 'http://127.0.0.1:9000/x',
      description: 'fleet A',
      eventTypes: ['vehicle.telemetry', 'endpoint.disabled', 'vehicle.telemetry'],
      vehicleIds: ['v1', 'v1', 'v2'],
      userIds: ['u1'],
      providers: ['smartcar'],
      throttleRate: 50,
      enabled: false,
      secret: SECRET,
    });
    expect(valid.eventTypes).toEqual(['vehicle.telemetry', 'endpoint.disabled']);
    expect(valid.vehicleIds).toEqual(['v1', 'v2']);
    expect(valid.secret).toBe(SECRET);
  });

  it.each([
    ['no url', {}, 'url: is required'],
    ['an ftp url', { url: 'ftp://a.example.com/' }, 'url: must be an http(s) URL'],
    ['a url that is not one', { url: 'not a url' }, 'url: must be an http(s) URL'],
    [
      'a too long url',
      { url: `https://a.example.com/${'x'.repeat(2048)}` },
      'url: must be at most 2048 characters',
    ],
    [
      'an unknown type',
      { url: 'https://a.example.com', eventTypes: ['vehicle.flying'] },
      'eventTypes.0: unknown event type "vehicle.flying"',
    ],
    ['a short secret', { url: 'https://a.example.com', secret: 'whsec_short' }, 'secret: must be whsec_'],
    ['throttleRate 0', { url: 'https://a.example.com', throttleRate: 0 }, 'throttleRate: must be positive'],
    [
      'a fractional throttleRate',
      { url: 'https://a.example.com', throttleRate: 1.5 },
      'throttleRate: must be an integer',
    ],
    [
      'a too high throttleRate',
      { url: 'https://a.example.com', throttleRate: 10_001 },
      'throttleRate: must be at most 10000',
    ],
    [
      'a too long description',
      { url: 'https://a.example.com', description: 'd'.repeat(501) },
      'description: must be at most 500 characters',
    ],
    [
      '1001 vehicle ids',
      { url: 'https://a.example.com', vehicleIds: Array.from({ length: 1001 }, (_, i) => `v${i}`) },
      'vehicleIds: at most 1000 entries',
    ],
    [
      'an empty user id',
      { url: 'https://a.example.com', userIds: [''] },
      'userIds.0: each user id must be non-empty',
    ],
    ['an unknown field', { url: 'https://a.example.com', colour: 'red' }, 'unknown field(s): colour'],
  ])('refuses a body with %s naming the field', (_what, input, message) => {
    expect(refusal(() => parseOrThrow(createEndpointSchema, input))).toContain(message);
  });

  it('names every bad field at once', () => {
    const message = refusal(() => parseOrThrow(createEndpointSchema, { url: 'x', throttleRate: -1 }));
    expect(message).toContain('url: ');
    expect(message).toContain('throttleRate: ');
  });
});

describe('update schema and applyPatch', () => {
  it('refuses the secret (it changes only by rotation) and unknown fields', () => {
    expect(refusal(() => parseOrThrow(updateEndpointSchema, { secret: SECRET }))).toContain(
      'unknown field(s): secret',
    );
  });

  it('changes only the fields given, and updatedAt', () => {
    const before = anEndpoint({ vehicleIds: ['v1'] });
    const after = applyPatch(
      before,
      parseOrThrow(updateEndpointSchema, { description: 'new', throttleRate: null, providers: ['smartcar'] }),
      T1,
    );
    expect(after).toEqual({
      ...before,
      description: 'new',
      throttleRate: null,
      providers: ['smartcar'],
      updatedAt: new Date(T1).toISOString(),
    });
    expect(before.description).toBe('');
  });

  it('enabled:false disables for reason manual; enabled:true clears reason and time', () => {
    const disabled = applyPatch(anEndpoint(), { enabled: false }, T1);
    expect(disabled).toMatchObject({
      enabled: false,
      disabledReason: 'manual',
      disabledAt: new Date(T1).toISOString(),
    });
    const enabled = applyPatch(withDisabled(anEndpoint(), 'endpoint_gone', T0), { enabled: true }, T1);
    expect(enabled).toMatchObject({ enabled: true, disabledReason: null, disabledAt: null });
  });

  it('enabled:false on a disabled endpoint keeps its first reason', () => {
    const gone = withDisabled(anEndpoint(), 'endpoint_gone', T0);
    expect(applyPatch(gone, { enabled: false }, T1)).toMatchObject({
      disabledReason: 'endpoint_gone',
      disabledAt: new Date(T0).toISOString(),
    });
  });
});

describe('newEndpoint, rotation, views and encoding', () => {
  it('creates an endpoint with the given or a generated secret; disabled ones for reason manual', () => {
    const given = anEndpoint();
    expect(given.secrets).toEqual({ current: SECRET, previous: null });
    expect(given.createdAt).toBe('2025-03-01T10:00:00.000Z');
    expect(given.updatedAt).toBe(given.createdAt);
    const generated = newEndpoint(
      parseOrThrow(createEndpointSchema, { url: 'https://a.example.com', enabled: false }),
      'ep_bbbbbbbbbbbbbbbbbbbbbbbbbb',
      T0,
    );
    expect(isValidSecret(generated.secrets.current)).toBe(true);
    expect(generated).toMatchObject({
      enabled: false,
      disabledReason: 'manual',
      disabledAt: generated.createdAt,
    });
  });

  it('rotation keeps the old secret as previous with the rotation time', () => {
    const next = generateSecret();
    const rotated = withRotatedSecret(anEndpoint(), next, T1);
    expect(rotated.secrets).toEqual({ current: next, previous: { secret: SECRET, rotatedAt: T1 } });
    expect(rotated.updatedAt).toBe(new Date(T1).toISOString());
  });

  it('the public view shows everything but the secrets', () => {
    const endpoint = withRotatedSecret(anEndpoint({ description: 'd' }), generateSecret(), T1);
    const view = publicView(endpoint);
    const { secrets, ...rest } = endpoint;
    expect(view).toEqual(rest);
    const text = JSON.stringify(view);
    expect(text).not.toContain(secrets.current.slice(6));
    expect(text).not.toContain(SECRET.slice(6));
    expect(text).not.toContain('whsec_');
  });

  it('checks a stored endpoint whole; refuses a record that is not one', () => {
    const endpoint = withRotatedSecret(anEndpoint({ throttleRate: 5 }), generateSecret(), T1);
    expect(parseStoredEndpoint(JSON.parse(JSON.stringify(endpoint)))).toEqual(endpoint);
    expect(() => parseStoredEndpoint({ id: 'ep_x' })).toThrow();
    expect(() => parseStoredEndpoint({ ...endpoint, secrets: { current: 'whsec_short' } })).toThrow();
  });
});

describe('owner', () => {
  it('accepts 1 to 64 characters of A-Z a-z 0-9 . _ : -, or null; defaults to null', () => {
    for (const owner of ['cust_42', 'acme.fleet:eu-1', 'a', 'x'.repeat(64)])
      expect(parseOrThrow(createEndpointSchema, { url: 'https://a.example.com', owner }).owner).toBe(owner);
    expect(parseOrThrow(createEndpointSchema, { url: 'https://a.example.com' }).owner).toBeNull();
    expect(parseOrThrow(updateEndpointSchema, { owner: null })).toEqual({ owner: null });
  });

  it.each(['', 'x'.repeat(65), 'has space', 'a/b', 'é', 42])('refuses owner %p naming the field', (owner) => {
    expect(() => parseOrThrow(createEndpointSchema, { url: 'https://a.example.com', owner })).toThrow(
      /^owner: /,
    );
    expect(() => parseOrThrow(updateEndpointSchema, { owner })).toThrow(/^owner: /);
  });

  it('is set by create, changed and cleared by a patch, and shown in the public view', () => {
    const endpoint = newEndpoint(
      parseOrThrow(createEndpointSchema, { url: 'https://a.example.com', owner: 'cust_1' }),
      'ep_aaaaaaaaaaaaaaaaaaaaaaaaaa',
      T0,
    );
    expect(publicView(endpoint).owner).toBe('cust_1');
    const moved = applyPatch(endpoint, parseOrThrow(updateEndpointSchema, { owner: 'cust_2' }), T1);
    expect(moved.owner).toBe('cust_2');
    const cleared = applyPatch(moved, parseOrThrow(updateEndpointSchema, { owner: null }), T1);
    expect(publicView(cleared).owner).toBeNull();
    // Not touched by a patch that does not name it.
    expect(applyPatch(moved, parseOrThrow(updateEndpointSchema, { description: 'd' }), T1).owner).toBe(
      'cust_2',
    );
  });

  it('reads a stored endpoint from before owners as owner null', () => {
    const { owner: _owner, ...old } = anEndpoint();
    expect(parseStoredEndpoint(JSON.parse(JSON.stringify(old))).owner).toBeNull();
    expect(publicView(old as Endpoint).owner).toBeNull();
  });
});
