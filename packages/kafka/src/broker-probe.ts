import type { Admin, Kafka } from 'kafkajs';
import { withTimeout } from './producer';

export interface BrokerProbe {
  start(): void;
  /** False once a probe failed, true again after the next one succeeds. */
  isReachable(): boolean;
  stop(): Promise<void>;
}

/**
 * Asks the cluster for its metadata every `intervalMs`. kafkajs reports no disconnect of its own while a
 * broker is away (it just retries), so readiness needs an active check.
 *
 * With `topic`, the probe asks for that topic's metadata only. Without it, it asks for the cluster's
 * (`describeCluster`), which kafkajs sends as a metadata request for every topic on the cluster (it encodes an
 * empty topic list as null, "all topics"): on a broker with a few hundred topics that was most of an idle
 * ingress's CPU, every 5 s. The admin client never creates a topic it asks about.
 */
export function createBrokerProbe(
  kafka: Kafka,
  options: { intervalMs?: number; timeoutMs?: number; topic?: string } = {},
): BrokerProbe {
  const intervalMs = options.intervalMs ?? 5_000;
  const timeoutMs = options.timeoutMs ?? 3_000;
  let admin: Admin | undefined;
  let reachable = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  const ask = async (client: Admin): Promise<void> => {
    if (options.topic) await client.fetchTopicMetadata({ topics: [options.topic] });
    else await client.describeCluster();
  };

  async function probe(): Promise<void> {
    try {
      admin ??= kafka.admin({ retry: { retries: 0 } });
      await withTimeout(
        admin.connect().then(() => ask(admin!)),
        timeoutMs,
        'kafka_unreachable',
        'Kafka did not answer',
      );
      reachable = true;
    } catch {
      reachable = false;
      const stale = admin;
      admin = undefined;
      await stale?.disconnect().catch(() => undefined);
    }
  }

  const tick = () => {
    running = probe().finally(() => {
      running = undefined;
      if (timer) timer = setTimeout(tick, intervalMs);
    });
  };

  return {
    start() {
      timer = setTimeout(tick, 0);
    },
    isReachable: () => reachable,
    async stop() {
      clearTimeout(timer);
      timer = undefined;
      await running;
      await admin?.disconnect().catch(() => undefined);
    },
  };
}
