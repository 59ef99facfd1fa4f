/**
 * What the admin API needs from the delivery engine (implemented there): attempt history, dead letters, and
 * re-sending. Times are ISO-8601 strings.
 */
export interface AttemptView {
  messageId: string;
  endpointId: string;
  eventType: string;
  attempt: number;
  status: 'succeeded' | 'failed';
  httpStatus: number | null;
  durationMs: number;
  responseExcerpt: string | null;
  error: string | null;
  at: string;
  next: 'done' | 'retry' | 'dead_letter' | 'disabled';
  nextAttemptAt?: string | null;
}
export interface DeadLetterView {
  messageId: string;
  endpointId: string;
  eventType: string;
  reason: string;
  lastStatus: number | null;
  lastError: string | null;
  failedAt: string;
  attempts: number;
}
export interface DeliveryControl {
  attemptsForEndpoint(endpointId: string, limit: number): Promise<AttemptView[]>;
  attemptsForMessage(messageId: string): Promise<AttemptView[]>;
  retryMessage(messageId: string, endpointId?: string): Promise<{ queued: number }>; // throws NotFoundError-like AppError code message_not_found status 404 when unknown
  recover(endpointId: string, sinceMs: number): Promise<{ queued: number }>;
  deadLetters(filter: { endpointId?: string; limit: number }): Promise<DeadLetterView[]>;
}
