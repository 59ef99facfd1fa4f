import pino from 'pino';
import { AppError, ValidationError } from '@ampflow/runtime';
import { createEndpointCodec, type EndpointCodec } from './endpoint-codec';
import { isValidSecret, type Endpoint } from './model';
import { createSecretBox, generateSecretsKey } from './secret-box';
import {
  createEndpointStoreOn,
  createMemoryEndpointTable,
  type EndpointChange,
  type EndpointStore,
  type EndpointTable,
} from './store';

const logger = pino({ level: 'silent' });
const T0 = Date.parse('2025-03-01T10:00:00Z');
const T1 = T0 + 60_000;

async function aStore(table: EndpointTable = createMemoryEndpointTable(), checkUrl?: (url: string) => void) {
  const store = createEndpointStoreOn(table, { logger, checkUrl });
  await store.start();
  return store;
}

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return (error as AppError).code;
  }
  throw new Error('expected a rejection');
}

describe('endpoint store (over an in-memory table)', () => {
  it('creates an endpoint with a generated id and secret, readable at once', async () => {
    const store = await aStore();
    const created = await store.create(
      { url: 'https://a.example.com/hook', eventTypes: ['vehicle.error'] },
      T0,
    );
    expect(created.id).toMatch(/^ep_[a-z2-7]{26}$/);
    expect(isValidSecret(created.secrets.current)).toBe(true);
    expect(store.get(created.id)).toEqual(created);
    expect(created).toMatchObject({
      enabled: true,
      eventTypes: ['vehicle.error'],
      createdAt: new Date(T0).toISOString(),
    });
  });

  it('validates input and refuses URLs that checkUrl refuses, writing nothing', async () => {
    const store = await aStore(createMemoryEndpointTable(), (url) => {
      if (url.includes('10.0.0.1')) throw new ValidationError('destination_refused', 'private address');
    });
    expect(await code(store.create({ url: 'gopher://x' }, T0))).toBe('invalid_request');
    expect(await code(store.create({ url: 'https://10.0.0.1/hook' }, T0))).toBe('destination_refused');
    const ok = await store.create({ url: 'https://a.example.com' }, T0);
    expect(await code(store.update(ok.id, { url: 'https://10.0.0.1/x' }, T1))).toBe('destination_refused');
    expect(store.list()).toEqual([ok]);
  });

  it('lists by creation time, then id', async () => {
    const store = await aStore();
    const late = await store.create({ url: 'https://a.example.com/late' }, T1);
    const early1 = await store.create({ url: 'https://a.example.com/1' }, T0);
    const early2 = await store.create({ url: 'https://a.example.com/2' }, T0);
    const early = [early1, early2].sort((a, b) => (a.id < b.id ? -1 : 1));
    expect(store.list().map((e) => e.id)).toEqual([...early.map((e) => e.id), late.id]);
  });

  it('updates, rotates, disables and removes; 404 for unknown ids', async () => {
    const store = await aStore();
    const created = await store.create({ url: 'https://a.example.com' }, T0);
    const updated = await store.update(created.id, { description: 'fleet', throttleRate: 10 }, T1);
    expect(updated).toMatchObject({
      description: 'fleet',
      throttleRate: 10,
      updatedAt: new Date(T1).toISOString(),
    });

    const rotated = await store.rotateSecret(created.id, T1);
    expect(rotated.secrets.current).not.toBe(created.secrets.current);
    expect(rotated.secrets.previous).toEqual({ secret: created.secrets.current, rotatedAt: T1 });

    const disabled = await store.disable(created.id, 'endpoint_gone', T1);
    expect(disabled).toMatchObject({ enabled: false, disabledReason: 'endpoint_gone' });
    expect(await store.disable(created.id, 'failing', T1 + 1)).toBeUndefined();
    expect(store.get(created.id)?.disabledReason).toBe('endpoint_gone');
    expect(await store.disable('ep_missing', 'failing', T1)).toBeUndefined();

    const reenabled = await store.update(created.id, { enabled: true }, T1);
    expect(reenabled).toMatchObject({ enabled: true, disabledReason: null, disabledAt: null });

    expect(await store.remove(created.id)).toBe(true);
    expect(await store.remove(created.id)).toBe(false);
    expect(store.get(created.id)).toBeUndefined();
    expect(await code(store.update(created.id, { description: 'x' }, T1))).toBe('endpoint_not_found');
    expect(await code(store.rotateSecret(created.id, T1))).toBe('endpoint_not_found');
  });

  it('an empty patch writes nothing', async () => {
    const store = await aStore();
    const created = await store.create({ url: 'https://a.example.com' }, T0);
    const changes: EndpointChange[] = [];
    store.onChange((c) => changes.push(c));
    expect(await store.update(created.id, {}, T1)).toEqual(created);
    expect(changes).toEqual([]);
  });

  it('serializes concurrent writes to one id, so none is lost', async () => {
    const base = createMemoryEndpointTable();
    // A table whose writes take a turn of the event loop, as a real one does.
    const slow: EndpointTable = {
      ...base,
      put: async (key, value) => {
        await new Promise((resolve) => setImmediate(resolve));
        await base.put(key, value);
      },
    };
    const store: EndpointStore = await aStore(slow);
    const created = await store.create({ url: 'https://a.example.com' }, T0);
    await Promise.all([
      store.update(created.id, { description: 'd' }, T1),
      store.update(created.id, { throttleRate: 7 }, T1),
      store.update(created.id, { providers: ['smartcar'] }, T1),
      store.rotateSecret(created.id, T1),
      store.update(created.id, { enabled: false }, T1),
    ]);
    expect(store.get(created.id)).toMatchObject({
      description: 'd',
      throttleRate: 7,
      providers: ['smartcar'],
      enabled: false,
      disabledReason: 'manual',
      secrets: { previous: { secret: created.secrets.current } },
    });
  });

  it('a failed write does not block later writes to the same id', async () => {
    const base = createMemoryEndpointTable();
    let failNext = false;
    const flaky: EndpointTable = {
      ...base,
      put: async (key, value) => {
        if (failNext) {
          failNext = false;
          throw new Error('broker down');
        }
        await base.put(key, value);
      },
    };
    const store = await aStore(flaky);
    const created = await store.create({ url: 'https://a.example.com' }, T0);
    failNext = true;
    await expect(store.update(created.id, { description: 'lost' }, T1)).rejects.toThrow('broker down');
    expect((await store.update(created.id, { description: 'kept' }, T1)).description).toBe('kept');
  });

  it('reports changes as before/after, including endpoints present at start', async () => {
    const seed = createMemoryEndpointTable();
    const first = await createEndpointStoreOn(seed, { logger }).create({ url: 'https://a.example.com' }, T0);
    const table = createMemoryEndpointTable([first]);
    const store = createEndpointStoreOn(table, { logger });
    const changes: EndpointChange[] = [];
    const unsubscribe = store.onChange((c) => changes.push(c));
    expect(store.ready()).toBe(false);
    await store.start();
    expect(store.ready()).toBe(true);
    const updated = await store.update(first.id, { description: 'x' }, T1);
    await store.remove(first.id);
    unsubscribe();
    await store.create({ url: 'https://b.example.com' }, T1);
    expect(changes).toEqual([
      { id: first.id, after: first },
      { id: first.id, before: first, after: updated },
      { id: first.id, before: updated },
    ]);
  });
});

/**
 * A table that keeps records encoded, as the topic does, and reads them through `codec`: what a store on
 * Kafka sees, without Kafka. `records` is the "topic" (latest record per key), after the older `log`; a
 * record `decode` refuses is skipped and its key keeps its older value, as in the real table.
 */
function aRecordTable(codec: EndpointCodec, records: Map<string, Buffer>, log: Buffer[] = []) {
  const read = new Map<string, Endpoint>();
  for (const record of [...log, ...records.values()]) {
    try {
      const endpoint = codec.decode(record);
      read.set(endpoint.id, endpoint);
    } catch {
      // skipped
    }
  }
  const base = createMemoryEndpointTable([...read.values()]);
  let failWrites = false;
  let writes = 0;
  const table: EndpointTable = {
    ...base,
    put: async (key, value) => {
      if (failWrites) throw new Error('broker down');
      writes += 1;
      const record = codec.encode(value);
      records.set(key, record);
      await base.put(key, codec.decode(record));
    },
  };
  return {
    table,
    writes: () => writes,
    failWrites: () => {
      failWrites = true;
    },
  };
}

async function untilReady(store: EndpointStore): Promise<void> {
  for (let turn = 0; turn < 1_000 && !store.ready(); turn++) await new Promise((r) => setImmediate(r));
  expect(store.ready()).toBe(true);
}

describe('endpoint store: secrets sealed at rest', () => {
  const k1 = generateSecretsKey('k1');
  const k2 = generateSecretsKey('k2');

  /** Three endpoints as an earlier store wrote them: plain text (before sealing), key k1, key k2. */
  async function aTopicFromBefore(): Promise<{ records: Map<string, Buffer>; endpoints: Endpoint[] }> {
    const records = new Map<string, Buffer>();
    const plain = await (await aStore()).create({ url: 'https://plain.example.com' }, T0);
    records.set(plain.id, Buffer.from(JSON.stringify(plain)));
    const endpoints = [plain];
    for (const key of [k1, k2]) {
      const written = new Map<string, Buffer>();
      const { table } = aRecordTable(createEndpointCodec(createSecretBox({ current: key })), written);
      const store = createEndpointStoreOn(table, { logger });
      await store.start();
      endpoints.push(await store.create({ url: `https://${key.kid}.example.com` }, T0));
      for (const [id, record] of written) records.set(id, record);
    }
    return { records, endpoints };
  }

  const sealedKid = (record: Buffer | undefined) => JSON.parse(record!.toString('utf8')).sealedSecrets?.kid;

  it('at start, rewrites plain-text and previous-key records sealed with the current key, then is ready', async () => {
    const { records, endpoints } = await aTopicFromBefore();
    expect(endpoints.map((e) => sealedKid(records.get(e.id)))).toEqual([undefined, 'k1', 'k2']);
    const codec = createEndpointCodec(createSecretBox({ current: k2, previous: k1 }));
    const { table, writes } = aRecordTable(codec, records);
    const store = createEndpointStoreOn(table, { logger, secretsAtRest: codec });
    await store.start();
    expect(store.ready()).toBe(false);
    await untilReady(store);

    expect(writes()).toBe(2);
    expect(endpoints.map((e) => sealedKid(records.get(e.id)))).toEqual(['k2', 'k2', 'k2']);
    for (const endpoint of endpoints) {
      expect(store.get(endpoint.id)).toEqual(endpoint);
      expect(records.get(endpoint.id)!.toString('utf8')).not.toContain('whsec_');
    }
    // The previous key can go now: a store with only the current one reads every endpoint.
    const after = createEndpointCodec(createSecretBox({ current: k2 }));
    expect([...records.values()].map((record) => after.decode(record))).toEqual(endpoints);
  });

  it('a failed rewrite leaves the record readable as it was and the store ready', async () => {
    const { records, endpoints } = await aTopicFromBefore();
    const codec = createEndpointCodec(createSecretBox({ current: k2, previous: k1 }));
    const { table, failWrites } = aRecordTable(codec, records);
    failWrites();
    const store = createEndpointStoreOn(table, { logger, secretsAtRest: codec });
    await store.start();
    await untilReady(store);
    expect(endpoints.map((e) => store.get(e.id))).toEqual(endpoints);
    expect(endpoints.map((e) => sealedKid(records.get(e.id)))).toEqual([undefined, 'k1', 'k2']);
  });

  it('rewrites nothing while the latest record of an endpoint could not be read (its older one would win)', async () => {
    const { records, endpoints } = await aTopicFromBefore();
    const plain = endpoints[0]!;
    // The latest record of the first endpoint was sealed with a key this store does not have.
    const newer = { ...plain, description: 'newer' };
    const unknown = createEndpointCodec(createSecretBox({ current: generateSecretsKey('k0') }));
    const log = [records.get(plain.id)!];
    records.set(plain.id, unknown.encode(newer));
    const codec = createEndpointCodec(createSecretBox({ current: k2, previous: k1 }));
    const { table, writes } = aRecordTable(codec, records, log);
    expect(codec.undecodableRecords()).toBe(1);
    const store = createEndpointStoreOn(table, { logger, secretsAtRest: codec });
    await store.start();
    await untilReady(store);
    expect(writes()).toBe(0);
    expect(sealedKid(records.get(plain.id))).toBe('k0');
    // Once a later record of that endpoint reads, it no longer holds the others back.
    codec.decode(codec.encode(plain));
    expect(codec.undecodableRecords()).toBe(0);
  });

  it('every write seals with the current key', async () => {
    const records = new Map<string, Buffer>();
    const codec = createEndpointCodec(createSecretBox({ current: k2, previous: k1 }));
    const store = createEndpointStoreOn(aRecordTable(codec, records).table, {
      logger,
      secretsAtRest: codec,
    });
    await store.start();
    const created = await store.create({ url: 'https://a.example.com' }, T0);
    const rotated = await store.rotateSecret(created.id, T1);
    const text = records.get(created.id)!.toString('utf8');
    expect(sealedKid(records.get(created.id))).toBe('k2');
    expect(text).not.toContain(rotated.secrets.current.slice('whsec_'.length));
    expect(text).not.toContain(created.secrets.current.slice('whsec_'.length));
  });
});
