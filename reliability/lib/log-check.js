'use strict';

/**
 * The log check: every line the services wrote during the run (their stdout and stderr, under the run's log
 * directory) is searched for the run's secrets (ingress tokens, the notifier's admin token, every endpoint
 * secret), for any signature that was sent or is shaped like one (`v1,<base64>`), and for every VIN that was
 * sent. One row: tried = lines read, stored = files read, and a failure naming what leaked where.
 */
const fs = require('node:fs');
const path = require('node:path');
const { row } = require('./context');

const VIN = /\b[A-HJ-NPR-Z0-9]{17}\b/g;
const SIGNATURE_SHAPED = /v1,[A-Za-z0-9+/]{40,}={0,2}/g;
const BASE64_44 = /[A-Za-z0-9+/]{43}=/g;
const HEX_64 = /\b[0-9a-f]{64}\b/g;

function checkLogs({ logDir, secrets, ctx }) {
  const literals = [
    ['SMARTCAR_MANAGEMENT_TOKEN', secrets.smartcarManagementToken],
    ['TELEMATICA_WEBHOOK_SECRET', secrets.telematicaWebhookSecret],
    ['TELEMATICA_WEBHOOK_SECRET (key)', secrets.telematicaWebhookSecret.replace(/^whsec_/, '')],
    ['NOTIFIER_ADMIN_TOKEN', secrets.notifierAdminToken],
    ['NOTIFIER_SECRETS_KEY', secrets.notifierSecretsKey.replace(/^[^:]*:/, '')],
    ...(ctx.endpointSecrets ?? []).flatMap((s, i) => [
      [`endpoint secret ${i}`, s],
      [`endpoint secret ${i} (key)`, s.replace(/^whsec_/, '')],
    ]),
  ];
  const vins = new Set();
  const signatures = new Set();
  for (const ledger of ctx.ledgers) {
    for (const v of ledger.sentVins) vins.add(v);
    for (const s of ledger.sentSignatures) signatures.add(s);
  }
  const leaks = [];
  let lines = 0;
  const files = fs.readdirSync(logDir).filter((f) => f.endsWith('.log') && f !== 'fault-stack.log');
  for (const file of files) {
    const text = fs.readFileSync(path.join(logDir, file), 'utf8');
    const fileLines = text.split('\n');
    lines += fileLines.length;
    fileLines.forEach((line, i) => {
      const where = `${file}:${i + 1}`;
      for (const [name, value] of literals)
        if (value && line.includes(value)) leaks.push({ where, what: name });
      for (const m of line.match(SIGNATURE_SHAPED) ?? [])
        leaks.push({ where, what: `signature-shaped ${m.slice(0, 8)}…` });
      for (const m of line.match(BASE64_44) ?? [])
        if (signatures.has(m)) leaks.push({ where, what: 'a sent signature' });
      for (const m of line.match(HEX_64) ?? [])
        if (signatures.has(m)) leaks.push({ where, what: 'a sent sc-signature' });
      for (const m of line.match(VIN) ?? []) if (vins.has(m)) leaks.push({ where, what: 'a sent VIN' });
    });
  }
  const r = row('log-check', {
    failure:
      leaks.length > 0
        ? `${leaks.length} leaks in the logs (${leaks[0].what} at ${leaks[0].where})`
        : undefined,
    details: {
      files,
      lines,
      vinsSent: vins.size,
      signaturesSent: signatures.size,
      secretsChecked: literals.length,
      leaks: leaks.slice(0, 50),
    },
  });
  r.tried = lines;
  r.acknowledged = '-';
  r.stored = '-';
  return r;
}

module.exports = { checkLogs };
