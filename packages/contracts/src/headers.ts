/** Headers of records on the raw topics (DESIGN.md, "Raw topics"). */
export const RawHeaders = {
  provider: 'provider',
  eventId: 'event-id',
  eventType: 'event-type',
  receivedAt: 'received-at',
  contentType: 'content-type',
} as const;

/** Headers a dead-lettered record carries besides its original ones (DESIGN.md, "Dead letters"). */
export const DeadLetterHeaders = {
  errorCode: 'error-code',
  errorMessage: 'error-message',
  failedAt: 'failed-at',
  sourceTopic: 'source-topic',
  sourcePartition: 'source-partition',
  sourceOffset: 'source-offset',
} as const;
