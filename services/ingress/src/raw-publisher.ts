import { RawHeaders, type Provider } from '@ampflow/contracts';
import type { ReliableProducer } from '@ampflow/kafka';
import type { Logger } from '@ampflow/observability';
import { withTimeout } from '@ampflow/runtime';
import type { IngressMetrics } from './metrics';
import { beforeDeadline, RequestDeadlineError, type RequestDeadline } from './request-deadline';
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
   * Kafka acknowledged (`accepted`) or an earlier copy of the id is stored (`duplicate`): never before the id
   * is on Kafka. Rejects with a retriable `kafka_timeout` after `publishTimeoutMs` of waiting for Kafka, or
   * `deadline_exceeded` once the request's `deadline` passes, whichever comes first; past the deadline nothing
   * new is sent. A copy already handed to the producer may still land after the rejection (see
   * docs/ingress.md); a redelivery then finds it in flight or seen.
   */
  publish(
    intake: EventIntake,
    rawBody: Buffer,
    contentType: string,
    deadline?: RequestDeadline,
  ): Promise<'accepted' | 'duplicate'>;
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
  /** Waits for Kafka up to `publishTimeoutMs`, or less when the request's deadline is nearer. */
  const waitFor = <T>(work: Promise<T>, deadline: RequestDeadline | undefined): Promise<T> =>
    deadline && deadline.remainingMs() <= deps.publishTimeoutMs
      ? beforeDeadline(deadline, work, 'waiting for Kafka')
      : withTimeout(work, deps.publishTimeoutMs, 'kafka_timeout', 'Kafka did not acknowledge');

  function send(intake: EventIntake, rawBody: Buffer, contentType: string) {
    const { provider, eventId } = intake;
    const flightKey = `${provider}:${eventId}`;
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
    return acked;
  }

  return {
    inFlightCount: () => inFlight.size,
    async publish(intake, rawBody, contentType, deadline) {
      const { provider, eventId } = intake;
      const flightKey = `${provider}:${eventId}`;
      // Each pass ends in an answer, or finds that a copy in flight failed; the next pass then publishes
      // this delivery (a provider's retry of a 503 is stored, not refused because an earlier copy failed).
      for (;;) {
        if (deadline?.expired()) throw deadline.error('checking for duplicates');
        const pending = inFlight.get(flightKey);
        if (pending) {
          const earlierStored = await waitFor(
            pending.then(
              () => true,
              () => false,
            ),
            deadline,
          );
          if (earlierStored) return 'duplicate';
          continue;
        }
        try {
          const checked = deps.seenStore.isSeen(provider, eventId);
          if (await (deadline ? beforeDeadline(deadline, checked, 'checking for duplicates') : checked))
            return 'duplicate';
        } catch (err) {
          // The deadline's own error (its timer may fire a fraction of a millisecond before `expired()` agrees).
          if (err instanceof RequestDeadlineError) throw err;
          if (deadline?.expired()) throw deadline.error('checking for duplicates');
          // Losing an event is worse than a duplicate that downstream drops by event id: publish anyway.
          metrics.dedupErrors.inc({ operation: 'check' });
          logger.warn({ err, provider, eventId }, 'duplicate check failed; publishing anyway');
        }
        if (inFlight.has(flightKey)) continue;
        // Nothing is handed to the producer past the deadline: the answer is a 503, so the copy would only
        // be a second one once the provider retries.
        if (deadline?.expired()) throw deadline.error('checking for duplicates');
        await waitFor(send(intake, rawBody, contentType), deadline);
        return 'accepted';
      }
    },
  };
}
