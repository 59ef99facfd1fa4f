'use strict';
/* global fetch, AbortSignal */

/**
 * The real notifier (services/notifier/dist/main.js) as the notifier and e2e benches run it: its environment
 * on the run's prefix (loopback http sinks allowed, bench-only admin token, Redis keys under the run's
 * namespace with a 1 h retention), and endpoint registration through its admin API.
 */
const path = require('node:path');
const { randomBytes } = require('node:crypto');
const { ROOT } = require('./log');

const NOTIFIER_MAIN = path.join(ROOT, 'services', 'notifier', 'dist', 'main.js');

/** A fresh admin token per run (never logged; it only lives in this process and the child's environment). */
function adminToken() {
  return `bench-${randomBytes(24).toString('hex')}`;
}

/** A fresh key for the endpoint secrets of a run: a run's topics die with it, so nothing needs it later. */
const secretsKey = `bench:${randomBytes(32).toString('base64')}`;

/** Environment of a notifier child on the run's prefix (children of one run share the secrets key). */
function notifierEnv({ infra, prefix, groupId, namespace, token }) {
  return {
    LOG_LEVEL: 'warn',
    SHUTDOWN_DRAIN_MS: '5000',
    HTTP_HOST: '127.0.0.1',
    KAFKA_BROKERS: infra.kafkaBrokers,
    REDIS_URL: infra.redisUrl,
    SCHEMA_REGISTRY_URL: infra.schemaRegistryUrl,
    KAFKA_TOPIC_PREFIX: prefix,
    NOTIFIER_GROUP_ID: groupId,
    NOTIFIER_REDIS_NAMESPACE: namespace,
    NOTIFIER_ADMIN_TOKEN: token,
    NOTIFIER_SECRETS_KEY: secretsKey,
    NOTIFIER_ALLOW_HTTP: 'true',
    NOTIFIER_ALLOWED_NETWORKS: '127.0.0.0/8',
    NOTIFIER_ATTEMPT_RETENTION_MS: String(3_600_000),
  };
}

/** `POST /v1/endpoints`; returns `{ id, secret }` (throws unless 201). */
async function registerEndpoint(baseUrl, token, body) {
  const res = await fetch(`${baseUrl}/v1/endpoints`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`POST /v1/endpoints: HTTP ${res.status} ${text.slice(0, 300)}`);
  const created = JSON.parse(text);
  if (typeof created.secret !== 'string') throw new Error('POST /v1/endpoints: no secret in the answer');
  return { id: created.id, secret: created.secret };
}

module.exports = { NOTIFIER_MAIN, adminToken, notifierEnv, registerEndpoint };
