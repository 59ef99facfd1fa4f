import type { CanonicalTopic, Provider } from '@ampflow/contracts';

/** A raw record as the ingress published it: headers plus the provider's exact bytes. */
export interface RawEvent {
  provider: Provider;
  /** The provider's idempotency key (Smartcar eventId, Svix message id), from the `event-id` header. */
  providerEventId: string;
  eventType: string;
  /** `received-at` header, epoch milliseconds. */
  receivedAt: number;
  body: unknown;
}

/** What a mapper returns: one canonical record, and what it skipped on the way. */
export interface Mapped<T = unknown> {
  topic: CanonicalTopic;
  key: string;
  value: T;
  /** Signals that came with `status: ERROR` and no body (Smartcar). */
  failedSignals: number;
  /** Signal codes we have no mapping for (kept out of the record, counted). */
  unknownSignals: string[];
}
