import { createHmac } from 'node:crypto';
import { Webhook } from 'svix';
import type { Provider } from '@ampflow/contracts';

/** The secrets the providers sign with, as the ingress is configured. */
export interface ProviderSecrets {
  smartcarManagementToken: string;
  /** `whsec_...`; during a rotation the variable holds two (comma or space separated): the first signs. */
  telematicaWebhookSecret: string;
}

/** Smartcar: `SC-Signature` = hex HMAC-SHA256 of the raw body keyed with the Application Management Token. */
export function smartcarHeaders(body: string, managementToken: string): Record<string, string> {
  return {
    'content-type': 'application/json',
    'user-agent': 'Smartcar/ampflow-demo',
    'sc-signature': createHmac('sha256', managementToken).update(body).digest('hex'),
  };
}

/** Telematica through Svix: `svix-id`, `svix-timestamp` (Unix seconds), `svix-signature` (`v1,<base64>`). */
export function svixHeaders(
  body: string,
  secret: string,
  id: string,
  timestamp: Date,
): Record<string, string> {
  return {
    'content-type': 'application/json',
    'svix-id': id,
    'svix-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
    'svix-signature': new Webhook(secret).sign(id, timestamp, body),
  };
}

/** The first of the secrets in `TELEMATICA_WEBHOOK_SECRET` (one, or two during a rotation). */
export function signingSecret(variable: string): string {
  const [first] = variable.split(/[\s,]+/).filter(Boolean);
  if (!first) throw new Error('TELEMATICA_WEBHOOK_SECRET is empty');
  return first;
}

/**
 * The headers of one delivery as its provider would send it, signed now. A Svix signature covers its
 * timestamp, which the ingress accepts within 5 minutes, so a repeated delivery is signed again with the same id.
 */
export function signDelivery(
  delivery: { provider: Provider; providerEventId: string; body: string },
  secrets: ProviderSecrets,
  now: Date,
): Record<string, string> {
  return delivery.provider === 'smartcar'
    ? smartcarHeaders(delivery.body, secrets.smartcarManagementToken)
    : svixHeaders(
        delivery.body,
        signingSecret(secrets.telematicaWebhookSecret),
        delivery.providerEventId,
        now,
      );
}
