import type { Kafka } from 'kafkajs';
import { createReliableProducer } from '@ampflow/kafka';
import type { Logger, Registry } from '@ampflow/observability';
import { createOpsApp, startHttpServer, type RunningHttpServer, type Service } from '@ampflow/runtime';

export interface NormalizerDeps {
  settings: { httpPort: number; schemaRegistryUrl: string; shutdownDrainMs: number };
  kafka: Kafka;
  logger: Logger;
  registry: Registry;
  fetch?: typeof fetch;
}

/**
 * The normalizer's shell: connects its producer, checks the schema registry answers, serves the ops
 * endpoints. The raw-to-canonical pipeline lands with the normalizer issue.
 */
export function createNormalizerApp(deps: NormalizerDeps): Service & { port(): number } {
  const { settings, logger, registry } = deps;
  const producer = createReliableProducer(deps.kafka);
  let registryReachable = false;
  let server: RunningHttpServer | undefined;
  const http = createOpsApp(registry, () => ({
    kafka: producer.isConnected(),
    schemaRegistry: registryReachable,
  }));

  async function checkRegistry(): Promise<void> {
    const res = await (deps.fetch ?? fetch)(`${settings.schemaRegistryUrl.replace(/\/$/, '')}/subjects`, {
      signal: AbortSignal.timeout(3_000),
    });
    if (!res.ok) throw new Error(`schema registry answered ${res.status}`);
    registryReachable = true;
  }

  return {
    port: () => server?.port ?? settings.httpPort,
    async start() {
      server = await startHttpServer(http, { port: settings.httpPort });
      await producer.connect();
      await checkRegistry();
      logger.info({ port: server.port }, 'normalizer ready');
    },
    async stop() {
      await server?.close(settings.shutdownDrainMs);
      await producer.disconnect();
    },
  };
}
