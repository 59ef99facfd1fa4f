import { createEndpointCodec } from './endpoint-codec';
import {
  createEndpointSchema,
  generateSecret,
  newEndpoint,
  parseOrThrow,
  withRotatedSecret,
  type Endpoint,
} from './model';
import { SecretBoxError, createSecretBox, generateSecretsKey } from './secret-box';

const T0 = Date.parse('2025-03-01T10:00:00Z');
const T1 = Date.parse('2025-03-02T11:30:00Z');
const k1 = generateSecretsKey('k1');
const k2 = generateSecretsKey('k2');

function anEndpoint(id = 'ep_aaaaaaaaaaaaaaaaaaaaaaaaaa'): Endpoint {
  const endpoint = newEndpoint(
    parseOrThrow(createEndpointSchema, { url: 'https://hooks.example.com/ev', description: 'fleet A' }),
    id,
    T0,
  );
  return withRotatedSecret(endpoint, generateSecret(), T1);
}

/** The base64 part of each of the endpoint's secrets: what must not appear in a record. */
const secretTexts = (endpoint: Endpoint) =>
  [endpoint.secrets.current, endpoint.secrets.previous!.secret].map((s) => s.slice('whsec_'.length));

/** The record as JSON before encryption at rest: secrets in plain text. */
const plainRecord = (endpoint: Endpoint) => Buffer.from(JSON.stringify(endpoint), 'utf8');

describe('endpoint codec', () => {
  it('writes no secret, current or previous; reads back the same endpoint', () => {
    const codec = createEndpointCodec(createSecretBox({ current: k1 }));
    const endpoint = anEndpoint();
    const record = codec.encode(endpoint);
    const text = record.toString('utf8');
    for (const secret of secretTexts(endpoint)) expect(text).not.toContain(secret);
    expect(text).not.toContain('whsec_');
    const stored = JSON.parse(text);
    expect(stored.secrets).toBeUndefined();
    expect(stored.sealedSecrets).toEqual({
      kid: 'k1',
      iv: expect.any(String),
      ciphertext: expect.any(String),
      tag: expect.any(String),
    });
    // What is not secret stays readable, for operators reading the topic.
    expect(stored).toMatchObject({ id: endpoint.id, url: endpoint.url, description: 'fleet A' });
    expect(codec.decode(record)).toEqual(endpoint);
    expect(codec.staleIds().size).toBe(0);
  });

  it('reads a plain-text record from before encryption at rest and marks it stale until resealed', () => {
    const codec = createEndpointCodec(createSecretBox({ current: k1 }));
    const endpoint = anEndpoint();
    expect(codec.decode(plainRecord(endpoint))).toEqual(endpoint);
    expect([...codec.staleIds()]).toEqual([endpoint.id]);
    codec.decode(codec.encode(endpoint));
    expect(codec.staleIds().size).toBe(0);
  });

  it('reads a record sealed with the previous key and marks it stale; rewriting seals with the current', () => {
    const endpoint = anEndpoint();
    const old = createEndpointCodec(createSecretBox({ current: k1 })).encode(endpoint);
    const codec = createEndpointCodec(createSecretBox({ current: k2, previous: k1 }));
    expect(codec.decode(old)).toEqual(endpoint);
    expect([...codec.staleIds()]).toEqual([endpoint.id]);
    const rewritten = codec.encode(endpoint);
    expect(JSON.parse(rewritten.toString('utf8')).sealedSecrets.kid).toBe('k2');
    codec.decode(rewritten);
    expect(codec.staleIds().size).toBe(0);
    expect(createEndpointCodec(createSecretBox({ current: k2 })).decode(rewritten)).toEqual(endpoint);
  });

  it('refuses a record sealed with an unknown key, or moved to another endpoint id', () => {
    const endpoint = anEndpoint();
    const sealed = createEndpointCodec(createSecretBox({ current: k1 })).encode(endpoint);
    const codec = createEndpointCodec(createSecretBox({ current: k2 }));
    expect(() => codec.decode(sealed)).toThrow(SecretBoxError);
    const moved = { ...JSON.parse(sealed.toString('utf8')), id: 'ep_bbbbbbbbbbbbbbbbbbbbbbbbbb' };
    const own = createEndpointCodec(createSecretBox({ current: k1 }));
    expect(() => own.decode(Buffer.from(JSON.stringify(moved)))).toThrow(SecretBoxError);
  });

  it('counts endpoints whose latest record it refused, until a later one of theirs reads', () => {
    const endpoint = anEndpoint();
    const other = anEndpoint('ep_bbbbbbbbbbbbbbbbbbbbbbbbbb');
    const codec = createEndpointCodec(createSecretBox({ current: k2 }));
    const foreign = createEndpointCodec(createSecretBox({ current: k1 }));
    expect(() => codec.decode(foreign.encode(endpoint))).toThrow(SecretBoxError);
    expect(() => codec.decode(foreign.encode(endpoint))).toThrow(SecretBoxError);
    expect(() => codec.decode(foreign.encode(other))).toThrow(SecretBoxError);
    expect(codec.undecodableRecords()).toBe(2);
    codec.decode(codec.encode(endpoint));
    expect(codec.undecodableRecords()).toBe(1);
    expect(() => codec.decode(Buffer.from('not json'))).toThrow();
    expect(codec.undecodableRecords()).toBe(2);
  });

  it('refuses a record that is not a whole endpoint', () => {
    const codec = createEndpointCodec(createSecretBox({ current: k1 }));
    expect(() => codec.decode(Buffer.from('{"id":"ep_x"}'))).toThrow();
    expect(() => codec.decode(Buffer.from('not json'))).toThrow();
    const { url: _url, ...withoutUrl } = JSON.parse(codec.encode(anEndpoint()).toString('utf8'));
    expect(() => codec.decode(Buffer.from(JSON.stringify(withoutUrl)))).toThrow();
  });

  it('keeps the owner, and still reads a record written before owners (owner null)', () => {
    const codec = createEndpointCodec(createSecretBox({ current: k1 }));
    const owned: Endpoint = { ...anEndpoint(), owner: 'cust_42' };
    expect(codec.decode(codec.encode(owned)).owner).toBe('cust_42');
    const { owner: _owner, ...old } = anEndpoint();
    const record = codec.encode(old as Endpoint);
    expect(JSON.parse(record.toString('utf8'))).not.toHaveProperty('owner');
    expect(codec.decode(record)).toEqual({ ...old, owner: null });
  });
});
