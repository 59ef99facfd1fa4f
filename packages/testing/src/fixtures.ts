import { createHmac, randomUUID } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Webhook } from 'svix';

export const FIXTURES_DIR = join(__dirname, '..', 'fixtures');

/** The raw bytes of a fixture, e.g. `fixtureBytes('smartcar/verify.json')`. */
export function fixtureBytes(name: string): Buffer {
  return readFileSync(join(FIXTURES_DIR, name));
}

export function fixtureJson<T = Record<string, unknown>>(name: string): T {
  return JSON.parse(fixtureBytes(name).toString('utf8')) as T;
}

/** Every JSON fixture of a provider, as `provider/file.json` names. */
export function fixtureNames(provider: 'smartcar' | 'telematica'): string[] {
  return readdirSync(join(FIXTURES_DIR, provider))
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => `${provider}/${f}`);
}

/** Headers of a Smartcar delivery signed with the Application Management Token. */
export function smartcarHeaders(body: Buffer | string, managementToken: string): Record<string, string> {
  return {
    'content-type': 'application/json',
    'user-agent': 'Smartcar/test',
    'sc-signature': createHmac('sha256', managementToken).update(body).digest('hex'),
  };
}

/** Headers of a Svix delivery (`svix-*`, or the unbranded `webhook-*` with `branded: false`). */
export function svixHeaders(
  body: Buffer | string,
  secret: string,
  options: { id?: string; timestamp?: Date; branded?: boolean } = {},
): Record<string, string> {
  const id = options.id ?? `msg_${randomUUID().replace(/-/g, '')}`;
  const timestamp = options.timestamp ?? new Date();
  const signature = new Webhook(secret).sign(id, timestamp, body.toString());
  const prefix = options.branded === false ? 'webhook' : 'svix';
  return {
    'content-type': 'application/json',
    [`${prefix}-id`]: id,
    [`${prefix}-timestamp`]: String(Math.floor(timestamp.getTime() / 1000)),
    [`${prefix}-signature`]: signature,
  };
}

/**
 * A raw-topic record as the ingress publishes it: the `telematica/vehicle-soc.json` body under the five raw
 * headers, with the given Svix message id as `event-id` (the normalizer's output id is `telematica:<eventId>`).
 */
export function rawTelematicaSocRecord(eventId: string, key: string) {
  return {
    key,
    value: fixtureBytes('telematica/vehicle-soc.json'),
    headers: {
      provider: 'telematica',
      'event-id': eventId,
      'event-type': 'vehicle.soc',
      'received-at': new Date().toISOString(),
      'content-type': 'application/json',
    },
  };
}
