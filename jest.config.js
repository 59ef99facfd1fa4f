/**
 * Two projects: `unit` (pure logic next to the code, no I/O) and `integration` (per-package `test/` folders and
 * `test/e2e/`, against the real Kafka, schema registry and Redis that the global setup provides).
 * Workspace packages resolve to their TypeScript sources, so tests never run against a stale build.
 */
const transform = { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022' } }] };
const moduleNameMapper = {
  // Subpath exports (package.json `exports`) resolve to their sources as well.
  '^@ampflow/runtime/(http|redis)$': '<rootDir>/packages/runtime/src/$1',
  '^@ampflow/(config|contracts|kafka|observability|ops|runtime|testing)$': '<rootDir>/packages/$1/src',
};
const common = { transform, moduleNameMapper, testEnvironment: 'node', rootDir: __dirname };

module.exports = {
  // Integration tests wait on real brokers; unit tests finish in milliseconds either way.
  testTimeout: 60_000,
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/{packages,services}/*/src/**/*.test.ts'],
    },
    {
      ...common,
      displayName: 'integration',
      // test/e2e/ holds the tests that span services (the only place allowed to import several).
      // reliability/test/ runs the reliability suite's short mode (its own broker, registry and Redis).
      testMatch: [
        '<rootDir>/{packages,services}/*/test/**/*.test.ts',
        '<rootDir>/test/e2e/**/*.test.ts',
        '<rootDir>/reliability/test/**/*.test.ts',
      ],
      // The replicated-Kafka tests start a cluster of their own and run only with `npm run test:replicated`.
      testPathIgnorePatterns: ['/node_modules/', '<rootDir>/services/[^/]+/test/replicated/'],
      globalSetup: '<rootDir>/packages/testing/src/jest/global-setup.ts',
      globalTeardown: '<rootDir>/packages/testing/src/jest/global-teardown.ts',
    },
  ],
};
