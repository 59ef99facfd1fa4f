import type { Kafka } from 'kafkajs';
import { createReliableProducer } from '@ampflow/kafka';
import type { Logger, Registry } from '@ampflow/observability';
import { createOpsService, type Service } from '@ampflow/runtime';

export interface NormalizerDeps {
  settings: { httpPort: number; schemaRegistryUrl: string; shutdownDrainMs: number };
  kafka: Kafka;
  logger: Logger;
  registry: Registry;
}

/**
 * The normalizer's shell: connects its producer, checks that the schema registry answers, serves the ops
 * endpoints. The raw-to-canonical pipeline lands with the normalizer issue.
 */
export function createNormalizerApp(deps: NormalizerDeps): Service & { port(): number } {
  const { settings } = deps;
  const producer = createReliableProducer(deps.kafka);
  let registryReachable = false;

  async function checkRegistry(): Promise<void> {
    const res = await fetch(`${settings.schemaRegistryUrl.replace(/\/$/, '')}/subjects`, {
      signal: AbortSignal.timeout(3_000),
    });
    if (!res.ok) throw new Error(`schema registry answered ${res.status}`);
    registryReachable = true;
  }

  return createOpsService({
    name: 'normalizer',
    httpPort: settings.httpPort,
    shutdownDrainMs: settings.shutdownDrainMs,
    registry: deps.registry,
    logger: deps.logger,
    readiness: () => ({ kafka: producer.isConnected(), schemaRegistry: registryReachable }),
    start: async () => {
      await producer.connect();
      await checkRegistry();
    },
    stop: () => producer.disconnect(),
  });
}
