/**
 * Room left in a raw record for everything besides the body: the key (a provider id), the five headers
 * (`provider`, `event-id`, `event-type`, `received-at`, `content-type`) and the record's framing. Node caps a
 * request's headers at 16 KiB, but the ids we copy come from the provider and are tens of bytes; 4 KiB is
 * generous. A record that still does not fit is refused by the producer (`record_too_large`, 413).
 */
export const RECORD_OVERHEAD_ALLOWANCE_BYTES = 4 * 1024;

/**
 * The largest body the ingress accepts for a raw topic: `MAX_BODY_BYTES`, lowered so that the body plus
 * {@link RECORD_OVERHEAD_ALLOWANCE_BYTES} fits the largest record the topic takes (`recordLimitBytes`, the
 * producer's `messageSizeLimit`). A body we answer 200 for must be storable: over the topic's limit the broker
 * would refuse the record, and the provider would retry a delivery that can never succeed.
 */
export function effectiveBodyLimitBytes(maxBodyBytes: number, recordLimitBytes: number): number {
  const fitting = recordLimitBytes - RECORD_OVERHEAD_ALLOWANCE_BYTES;
  if (fitting < 1) {
    throw new Error(
      `the raw topic takes records of at most ${recordLimitBytes} bytes, ` +
        `not even the ${RECORD_OVERHEAD_ALLOWANCE_BYTES} bytes of key and headers a webhook needs`,
    );
  }
  return Math.min(maxBodyBytes, fitting);
}
