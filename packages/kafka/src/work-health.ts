import { DependencyError } from '@ampflow/runtime';
import type { ConsumerHealth } from './consumer-runner';
import type { ReliableProducer } from './producer';

export interface WorkHealthOptions {
  producer: ReliableProducer;
  /** The service's consumer, when it has one. */
  runner?: { health(): ConsumerHealth };
  /** Not ready once records waited this long with no acknowledgement, or a chunk failed this long (30 s). */
  notReadyAfterMs?: number;
  /** `onFatal` once records waited this long with no acknowledgement (default 5 min). */
  fatalAfterMs?: number;
  /** How often the watchdog looks (default 5 s). */
  intervalMs?: number;
  onFatal: (error: unknown) => void;
}

export interface WorkHealth {
  /** Readiness that reflects the ability to do work, not only a connection. */
  ready(): boolean;
  /** The parts of `ready`, for `/readyz`. */
  detail(): Record<string, boolean>;
  start(): void;
  stop(): void;
}

/**
 * Readiness and a stall watchdog for a service that produces (and maybe consumes): ready while the producer is
 * connected and acknowledging and the consumer is in its group and not stuck on a chunk; past `fatalAfterMs`
 * without an acknowledgement the service is assumed stuck and `onFatal` asks for a restart.
 */
export function createWorkHealth(options: WorkHealthOptions): WorkHealth {
  const notReadyAfterMs = options.notReadyAfterMs ?? 30_000;
  const fatalAfterMs = options.fatalAfterMs ?? 5 * 60_000;
  let timer: NodeJS.Timeout | undefined;
  let fired = false;

  const detail = () => {
    const producer = options.producer.health();
    const parts: Record<string, boolean> = {
      kafka: producer.connected,
      producing: producer.stalledMs < notReadyAfterMs,
    };
    if (options.runner) {
      const consumer = options.runner.health();
      parts.consumer = consumer.running;
      parts.consuming = consumer.failingMs < notReadyAfterMs;
    }
    return parts;
  };

  return {
    detail,
    ready: () => Object.values(detail()).every(Boolean),
    start() {
      timer = setInterval(() => {
        const { stalledMs, pendingRecords } = options.producer.health();
        if (fired || stalledMs <= fatalAfterMs) return;
        fired = true;
        options.onFatal(
          new DependencyError(
            'producer_stalled',
            `${pendingRecords} records waited ${Math.round(stalledMs / 1000)} s with no acknowledgement from Kafka`,
          ),
        );
      }, options.intervalMs ?? 5_000);
      timer.unref();
    },
    stop() {
      clearInterval(timer);
    },
  };
}
