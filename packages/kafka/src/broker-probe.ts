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
 */
export function createBrokerProbe(
  kafka: Kafka,
  options: { intervalMs?: number; timeoutMs?: number } = {},
): BrokerProbe {
  const intervalMs = options.intervalMs ?? 5_000;
  const timeoutMs = options.timeoutMs ?? 3_000;
  let admin: Admin | undefined;
  let reachable = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  async function probe(): Promise<void> {
    try {
      admin ??= kafka.admin({ retry: { retries: 0 } });
      await withTimeout(
        admin.connect().then(() => admin!.describeCluster()),
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
