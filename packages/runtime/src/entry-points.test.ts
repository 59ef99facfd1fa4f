/**
 * Consumer-only services (normalizer, session aggregator, notifier's workers) import `@ampflow/runtime` and
 * `@ampflow/kafka`; neither may load express, which lives behind `@ampflow/runtime/http`.
 */
const expressModules = () =>
  Object.keys(require.cache).filter((path) => path.includes('/node_modules/express/'));

beforeEach(() => jest.resetModules());

it('loads no express through @ampflow/runtime', async () => {
  const runtime = await import('@ampflow/runtime');
  expect(typeof runtime.createOpsService).toBe('function');
  expect(expressModules()).toEqual([]);
});

it('loads no express through @ampflow/kafka', async () => {
  const kafka = await import('@ampflow/kafka');
  expect(typeof kafka.withTimeout).toBe('function');
  expect(expressModules()).toEqual([]);
});

it('loads express through @ampflow/runtime/http (the check sees it when it is there)', async () => {
  const http = await import('@ampflow/runtime/http');
  expect(typeof http.createHttpApp).toBe('function');
  expect(expressModules()).not.toEqual([]);
});
