'use strict';

/**
 * CPU cost per webhook of the ingress's own steps, measured in-process on the built code
 * (services/ingress/dist) with the bench's fixtures: signature check, JSON.parse, schema check, the whole
 * `interpret*` call, and the per-request extras in app.ts (request id, child logger, metrics). Complements
 * the CPU profile of `BENCH_PROFILE=1 npm run bench -- ingress` with numbers per step.
 *
 *   node bench/tools/intake-cost.js [--iterations=20000]
 */
const crypto = require('node:crypto');
const { Buffer } = require('node:buffer');
const { Writable } = require('node:stream');
const path = require('node:path');
const { ROOT } = require('../lib/log');
const {
  BENCH_SECRETS: SECRETS,
  buildSignedRequests,
  loadWebhookFixtures,
} = require('../lib/webhook-requests');

const intake = require(path.join(ROOT, 'services/ingress/dist/webhook-intake.js'));
const { verifySmartcarSignature } = require(
  path.join(ROOT, 'services/ingress/dist/providers/smartcar-signature.js'),
);
// The provider schemas live in @ampflow/contracts (shared by the ingress and the normalizer).
const contracts = require('@ampflow/contracts');
const { createIngressMetrics } = require(path.join(ROOT, 'services/ingress/dist/metrics.js'));
const { createLogger, createMetricsRegistry } = require('@ampflow/observability');

const iterations = Math.min(
  200_000,
  Math.max(
    1_000,
    Number((process.argv.find((a) => a.startsWith('--iterations=')) || '=20000').split('=')[1]),
  ),
);

/** Mean µs per call of `fn(item)` over `items` cycled `iterations` times (after a 10 % warm-up). */
function timePerCall(items, fn) {
  const warmup = Math.ceil(iterations / 10);
  for (let i = 0; i < warmup; i++) fn(items[i % items.length]);
  const started = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn(items[i % items.length]);
  return Number(process.hrtime.bigint() - started) / 1e3 / iterations;
}

function main() {
  const fixtures = loadWebhookFixtures();
  const { requests } = buildSignedRequests(4_000, fixtures, SECRETS);
  const smartcar = requests.filter((r) => r.provider === 'smartcar');
  const telematica = requests.filter((r) => r.provider === 'telematica');
  const verifier = intake.createTelematicaVerifier([SECRETS.telematicaWebhookSecret]);
  const svixKey = Buffer.from(SECRETS.telematicaWebhookSecret.slice('whsec_'.length), 'base64');
  const parsedSmartcar = smartcar.map((r) => JSON.parse(r.body.toString('utf8')));
  const parsedTelematica = telematica.map((r) => JSON.parse(r.body.toString('utf8')));
  const smartcarSchemaOf = (body) =>
    body.eventType === 'VEHICLE_ERROR' ? contracts.smartcarVehicleError : contracts.smartcarVehicleState;

  const sink = new Writable({ write: (_chunk, _encoding, callback) => callback() });
  const logger = createLogger({ service: 'ingress', level: 'warn', destination: sink });
  const metrics = createIngressMetrics(
    createMetricsRegistry('ingress', { defaultMetrics: false }),
    () => true,
  );

  const rows = [
    [
      'smartcar: whole interpretSmartcar',
      timePerCall(smartcar, (r) =>
        intake.interpretSmartcar(SECRETS.smartcarManagementToken, r.body, r.headers),
      ),
    ],
    [
      'smartcar:   HMAC check (node:crypto)',
      timePerCall(smartcar, (r) =>
        verifySmartcarSignature(SECRETS.smartcarManagementToken, r.body, r.headers['sc-signature']),
      ),
    ],
    ['smartcar:   JSON.parse', timePerCall(smartcar, (r) => JSON.parse(r.body.toString('utf8')))],
    ['smartcar:   zod schema check', timePerCall(parsedSmartcar, (b) => smartcarSchemaOf(b).safeParse(b))],
    [
      'telematica: whole interpretTelematica',
      timePerCall(telematica, (r) => intake.interpretTelematica(verifier, r.body, r.headers)),
    ],
    [
      'telematica:   svix verify (fast-sha256, includes JSON.parse)',
      timePerCall(telematica, (r) => verifier.verify(r.body, r.headers)),
    ],
    [
      'telematica:   same HMAC with node:crypto (for comparison)',
      timePerCall(telematica, (r) => {
        const signed = `${r.headers['svix-id']}.${r.headers['svix-timestamp']}.${r.body.toString('utf8')}`;
        const expected = crypto.createHmac('sha256', svixKey).update(signed).digest();
        const given = Buffer.from(r.headers['svix-signature'].split(',')[1], 'base64');
        return given.length === expected.length && crypto.timingSafeEqual(given, expected);
      }),
    ],
    [
      'telematica:   zod schema check',
      timePerCall(parsedTelematica, (b) => contracts.telematicaSchemas[b.type].safeParse(b)),
    ],
    [
      'per request:  randomUUID + logger.child({requestId})',
      timePerCall([0], () => logger.child({ requestId: crypto.randomUUID() })),
    ],
    [
      'per request:  log.info at LOG_LEVEL=warn (no-op)',
      timePerCall([logger.child({ requestId: 'x' })], (log) => log.info({ a: 1 }, 'webhook handled')),
    ],
    [
      'per request:  metrics (bodyBytes + publishSeconds + requests.inc)',
      timePerCall(['smartcar', 'telematica'], (provider) => {
        metrics.bodyBytes.observe({ provider }, 1024);
        metrics.publishSeconds.observe({ provider, result: 'ok' }, 0.004);
        metrics.requests.inc({ provider, event_type: 'VEHICLE_STATE', outcome: 'accepted' });
      }),
    ],
  ];
  process.stdout.write(`µs per call, mean of ${iterations} calls (node ${process.version})\n`);
  for (const [name, micros] of rows) process.stdout.write(`${micros.toFixed(2).padStart(9)}  ${name}\n`);
}

main();
