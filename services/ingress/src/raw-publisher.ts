import { RawHeaders, type Provider } from '@ampflow/contracts';
import type { ReliableProducer } from '@ampflow/kafka';
import type { Logger } from '@ampflow/observability';
import { withTimeout } from '@ampflow/runtime';
import type { IngressMetrics } from './metrics';
import type { SeenStore } from './seen-store';
import type { Intake } from './webhook-intake';

/** A verified delivery to publish. */
export type EventIntake = Extract<Intake, { kind: 'event' }>;

export interface RawPublisherDeps {
  producer: Pick<ReliableProducer, 'send'>;
  seenStore: Pick<SeenStore, 'isSeen' | 'markSeen'>;
  /** The raw topic of each provider. */
  topicOf: (provider: Provider) => string;
  /** How long an answer waits for Kafka's acknowledgement before it fails with 503 `kafka_timeout`, in ms. */
  publishTimeoutMs: number;
  metrics: Pick<IngressMetrics, 'publishSeconds' | 'dedupErrors'>;
  logger: Logger;
  /** Wall clock for the `received-at` header. */
  now: () => Date;
}

export interface RawPublisher {
  /**
   * Publishes a delivery's raw bytes unless its event id is already stored or being stored; resolves once
   * Kafka acknowledged (`accepted`) or the id was known (`duplicate`), rejects with a retriable
   * `kafka_timeout` after `publishTimeoutMs`.
   */
  publish(intake: EventIntake, rawBody: Buffer, contentType: string): Promise<'accepted' | 'duplicate'>;
  /** Deliveries on their way to Kafka (or to the seen store) right now. */
  inFlightCount(): number;
}

/**
 * Raw publishing with deduplication. The table of deliveries in flight lives until Kafka settles, not until the
 * request gives up: a provider retry during a Kafka outage waits on the first copy instead of queueing a second.
 */
export function createRawPublisher(deps: RawPublisherDeps): RawPublisher {
  const { metrics, logger } = deps;
  /** Event ids whose record is on its way to Kafka, keyed `<provider>:<eventId>`. */
  const inFlight = new Map<string, Promise<void>>();
  const waitFor = (stored: Promise<void>) =>
    withTimeout(stored, deps.publishTimeoutMs, 'kafka_timeout', 'Kafka did not acknowledge');

  return {
    inFlightCount: () => inFlight.size,
    async publish(intake, rawBody, contentType) {
      const { provider, eventId } = intake;
      const flightKey = `${provider}:${eventId}`;
      const pending = inFlight.get(flightKey);
      if (pending) return waitFor(pending).then(() => 'duplicate');
      try {
        if (await deps.seenStore.isSeen(provider, eventId)) return 'duplicate';
      } catch (err) {
        // Losing an event is worse than a duplicate that downstream drops by event id: publish anyway.
        metrics.dedupErrors.inc({ operation: 'check' });
        logger.warn({ err, provider, eventId }, 'duplicate check failed; publishing anyway');
      }
      const raced = inFlight.get(flightKey);
      if (raced) return waitFor(raced).then(() => 'duplicate');

      const started = process.hrtime.bigint();
      const elapsedSeconds = () => Number(process.hrtime.bigint() - started) / 1e9;
      const acked = deps.producer
        .send(deps.topicOf(provider), [
          {
            key: intake.key,
            value: rawBody,
            headers: {
              [RawHeaders.provider]: provider,
              [RawHeaders.eventId]: eventId,
              [RawHeaders.eventType]: intake.eventType,
              [RawHeaders.receivedAt]: deps.now().toISOString(),
              [RawHeaders.contentType]: contentType,
            },
          },
        ])
        .then(
          () => metrics.publishSeconds.observe({ provider, result: 'ok' }, elapsedSeconds()),
          (err: unknown) => {
            metrics.publishSeconds.observe({ provider, result: 'failed' }, elapsedSeconds());
            throw err;
          },
        );
      // Remembered once Kafka acknowledged, also when that came after this request was answered 503. The
      // answer does not wait for Redis: until the id is marked, the in-flight entry catches redeliveries.
      const stored = acked.then(async () => {
        try {
          await deps.seenStore.markSeen(provider, eventId);
        } catch (err) {
          metrics.dedupErrors.inc({ operation: 'mark' });
          logger.warn({ err, provider, eventId }, 'could not remember a stored event id');
        }
      });
      inFlight.set(flightKey, stored);
      stored.then(
        () => inFlight.delete(flightKey),
        () => inFlight.delete(flightKey),
      );
      await waitFor(acked);
      return 'accepted';
    },
  };
}
