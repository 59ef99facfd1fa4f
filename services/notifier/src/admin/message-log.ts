import type { Endpoint } from '../endpoints/model';
import type { EventRouting } from '../events/customer-events';
import type {
  DeliveryStatus,
  EndpointHealth,
  MessageCursor,
  MessageEndpointView,
  MessageSummary,
} from '../history/message-log-model';
import type { AttemptView } from './delivery-control';

export type { DeliveryStatus, EndpointHealth, MessageCursor, MessageSummary };

export interface MessageListQuery {
  endpointId?: string;
  eventType?: string;
  vehicle?: string;
  status?: DeliveryStatus;
  sinceMs?: number;
  untilMs?: number;
  limit: number;
  cursor?: MessageCursor;
}

/** `GET /v1/messages/:id`: the message as sent, where it stands per endpoint, and its attempts. */
export interface MessageDetail {
  id: string;
  type: string;
  vehicleId?: string;
  createdAt: string;
  /** The JSON body sent; null once Redis no longer holds it (or for operational events, never stored). */
  body: unknown;
  routing: EventRouting | null;
  endpoints: MessageEndpointView[];
  attempts: AttemptView[];
}

export interface RetrySelection {
  endpointId?: string;
  eventType?: string;
  /** Which deliveries: `failed` (a retry is scheduled), `dead` (dead letters); both when absent. */
  status?: 'failed' | 'dead';
  sinceMs?: number;
  untilMs?: number;
  /** Messages re-sent at most. */
  limit: number;
}

/** What the admin API needs for the message log, endpoint health and test events (see src/history). */
export interface AdminMessageLog {
  list(query: MessageListQuery): Promise<{ data: MessageSummary[]; nextCursor?: MessageCursor }>;
  get(messageId: string): Promise<MessageDetail | null>;
  health(endpoints: readonly Endpoint[]): Promise<Map<string, EndpointHealth>>;
  /** Sends a signed `endpoint.test` message to this endpoint only, through the delivery path. */
  sendTest(endpoint: Endpoint): Promise<{ messageId: string }>;
  /** Re-sends the deliveries the selection matches, message by message (the one-message retry). */
  retryMatching(selection: RetrySelection): Promise<{ retried: number }>;
}
