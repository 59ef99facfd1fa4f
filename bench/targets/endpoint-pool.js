'use strict';
/* global URL */

const { Pool } = require('undici');

/**
 * One webhook endpoint of the notifier baselines: an undici keep-alive pool and a limit of `concurrency`
 * requests in flight (the notifier's default per endpoint). `post(body, id)` POSTs `body` with
 * `webhook-id: id` and resolves when answered; failures are counted in `failures.count` (the first 5
 * logged), never thrown: the baselines have no retries.
 */
function endpointOf(url, concurrency, failures, name) {
  const { origin, pathname } = new URL(url);
  const pool = new Pool(origin, { connections: concurrency, pipelining: 1 });
  let active = 0;
  const waiting = [];
  const release = () => {
    active -= 1;
    const next = waiting.shift();
    if (next) next();
  };
  return {
    pool,
    async post(body, id) {
      if (active >= concurrency) await new Promise((resolve) => waiting.push(resolve));
      active += 1;
      try {
        const res = await pool.request({
          path: pathname,
          method: 'POST',
          headers: { 'content-type': 'application/octet-stream', 'webhook-id': id },
          body,
        });
        await res.body.dump();
        if (res.statusCode >= 300) failures.count += 1;
      } catch (err) {
        failures.count += 1;
        if (failures.count <= 5) process.stderr.write(`${name}: POST failed: ${err.message}\n`);
      } finally {
        release();
      }
    },
  };
}

module.exports = { endpointOf };
