'use strict';

const { randomUUID } = require('node:crypto');
const { Buffer } = require('node:buffer');
const { fixtureBytes, fixtureNames, smartcarHeaders, svixHeaders } = require('@ampflow/testing');

/** Bench-only credentials (nothing real): the ingress is started with them and requests are signed with them. */
const BENCH_SECRETS = {
  smartcarManagementToken: 'bench-smartcar-management-token',
  telematicaWebhookSecret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
};

const EVENT_ID_FIELD = /("eventId"\s*:\s*")[^"]*(")/;

/** Rewrites the top-level `eventId` in the fixture's own text (formatting kept byte for byte otherwise). */
function withEventId(template, eventId) {
  return Buffer.from(template.text.replace(EVENT_ID_FIELD, `$1${eventId}$2`), 'utf8');
}

/**
 * Every published (non-challenge) fixture: Smartcar's `verify*.json` are VERIFY challenges the ingress
 * answers without publishing, so they are left out.
 */
function loadWebhookFixtures() {
  const smartcar = fixtureNames('smartcar')
    .filter((name) => !/\/verify[^/]*\.json$/.test(name))
    .map((name) => {
      const text = fixtureBytes(name).toString('utf8');
      const template = { name, text };
      const probeId = randomUUID();
      const parsed = JSON.parse(withEventId(template, probeId).toString('utf8'));
      if (parsed.eventId !== probeId) throw new Error(`${name}: could not rewrite its top-level eventId`);
      return template;
    });
  const telematica = fixtureNames('telematica').map((name) => ({ name, body: fixtureBytes(name) }));
  if (smartcar.length === 0 || telematica.length === 0) throw new Error('no webhook fixtures found');
  return { smartcar, telematica };
}

/**
 * `count` signed deliveries, alternating Smartcar and Telematica and cycling through each provider's
 * fixtures. Each carries a fresh id (Smartcar `eventId` in the body, Svix `svix-id` header), and is signed
 * after that change. Svix signatures embed `timestamp` (the ingress accepts ±5 minutes), so build each pool
 * right before the run that uses it.
 */
function buildSignedRequests(count, fixtures, secrets, timestamp = new Date()) {
  const requests = new Array(count);
  const perFixture = {};
  for (let i = 0; i < count; i++) {
    const slot = i >> 1;
    let request;
    if (i % 2 === 0) {
      const template = fixtures.smartcar[slot % fixtures.smartcar.length];
      const body = withEventId(template, randomUUID());
      request = {
        provider: 'smartcar',
        path: '/webhooks/smartcar',
        headers: smartcarHeaders(body, secrets.smartcarManagementToken),
        body,
      };
      perFixture[template.name] = (perFixture[template.name] ?? 0) + 1;
    } else {
      const fixture = fixtures.telematica[slot % fixtures.telematica.length];
      const id = `msg_${randomUUID().replace(/-/g, '')}`;
      request = {
        provider: 'telematica',
        path: '/webhooks/telematica',
        headers: svixHeaders(fixture.body, secrets.telematicaWebhookSecret, { id, timestamp }),
        body: fixture.body,
      };
      perFixture[fixture.name] = (perFixture[fixture.name] ?? 0) + 1;
    }
    requests[i] = request;
  }
  return { requests, perFixture, signedAt: timestamp.toISOString() };
}

module.exports = { BENCH_SECRETS, loadWebhookFixtures, buildSignedRequests, withEventId };
