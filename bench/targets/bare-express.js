'use strict';

/**
 * The baseline: a bare Express 5 server on the same routes as the ingress that reads the body (as the
 * ingress does, with express.raw) and answers 200 `{}` without any other work. Same Express settings as the
 * ingress (no x-powered-by, no ETag). GET /readyz answers 200 so the bench can wait for it the same way.
 */
const express = require('express');

const port = Number(process.env.HTTP_PORT);
const host = process.env.HTTP_HOST || '127.0.0.1';
if (!Number.isInteger(port) || port <= 0) {
  process.stderr.write('bare-express: HTTP_PORT must be set\n');
  process.exit(1);
}

const app = express();
app.disable('x-powered-by');
app.set('etag', false);
app.get('/readyz', (_req, res) => {
  res.json({ status: 'ready' });
});
app.post('/webhooks/:provider', express.raw({ type: () => true, limit: 256 * 1024 }), (_req, res) => {
  res.status(200).json({});
});

const server = app.listen(port, host, (err) => {
  if (err) {
    process.stderr.write(`bare-express: ${err.message}\n`);
    process.exit(1);
  }
});

function stop() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
