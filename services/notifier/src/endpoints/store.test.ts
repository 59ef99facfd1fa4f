import pino from 'pino';
import { AppError, ValidationError } from '@ampflow/runtime';
import { isValidSecret } from './model';
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
