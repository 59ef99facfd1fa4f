/**
 * `npm run test:replicated`: the tests against a replicated Kafka (three brokers and a controller of their own,
 * started by packages/testing's fault stack through deploy/local/stack.sh with AMPFLOW_KAFKA_BROKERS=3), kept out
 * of `npm test` for their cost. Same transform, module mapping and global setup (the shared Redis the ingress's
 * seen store uses) as the integration project; one file at a time, since each file runs a cluster.
 */
const base = require('./jest.config');

const integration = base.projects.find((project) => project.displayName === 'integration');

module.exports = {
  testTimeout: base.testTimeout,
  maxWorkers: 1,
  projects: [
    {
      ...integration,
      displayName: 'replicated',
      testMatch: ['<rootDir>/services/*/test/replicated/**/*.test.ts'],
      testPathIgnorePatterns: ['/node_modules/'],
    },
  ],
};
