import { exportEndpoints } from '../env';
import { provisionInfrastructure, type ProvisionedInfra } from '../infrastructure';

declare global {
  // Shared with the global teardown, which runs in the same process.
  var __AMPFLOW_INFRA__: ProvisionedInfra | undefined;
}

export default async function globalSetup(): Promise<void> {
  const started = Date.now();
  const infra = await provisionInfrastructure();
  globalThis.__AMPFLOW_INFRA__ = infra;
  exportEndpoints(infra.endpoints);
  process.stderr.write(
    `\n[ampflow] integration infrastructure (${infra.mode}, ready in ${Date.now() - started} ms): ` +
      `kafka ${infra.endpoints.kafkaBrokers.join(',')}, registry ${infra.endpoints.schemaRegistryUrl}, ` +
      `redis ${infra.endpoints.redisUrl}\n`,
  );
}
