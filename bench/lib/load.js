'use strict';

const autocannon = require('autocannon');
const { percentile, round } = require('./stats');

/**
 * One autocannon run against `baseUrl` that sends the pre-built `requests` in order, one per request,
 * shared by all connections. Past the end it starts over and counts the reuse (for the ingress that would
 * be duplicates, so the pool is sized to make that not happen, and the report shows it if it does).
 *
 * Latency percentiles come from every response's own time (autocannon's histogram has 1 ms resolution,
 * too coarse for the baseline); autocannon's figures are kept alongside.
 */
async function runLoad({ title, baseUrl, connections, durationS, requests }) {
  if (requests.length === 0) throw new Error(`${title}: no requests to send`);
  let next = 0;
  const latencies = [];
  const instance = autocannon({
    title,
    url: baseUrl,
    connections,
    duration: durationS,
    pipelining: 1,
    timeout: 10,
    requests: [
      {
        method: 'POST',
        setupRequest(request) {
          const item = requests[next % requests.length];
          next += 1;
          return {
            ...request,
            method: 'POST',
            path: item.path,
            headers: { ...item.headers },
            body: item.body,
          };
        },
      },
    ],
  });
  instance.on('response', (_client, _statusCode, _bytes, responseTimeMs) => {
    latencies.push(responseTimeMs);
  });
  const result = await instance;

  const sorted = Float64Array.from(latencies).sort();
  const statusCodes = Object.fromEntries(
    Object.entries(result.statusCodeStats).map(([code, stats]) => [code, stats.count]),
  );
  const completed = result.requests.total;
  return {
    title,
    durationS: result.duration,
    requestsPerSec: round(result.requests.average, 1),
    okPerSec: round(result['2xx'] / result.duration, 1),
    p50Ms: round(percentile(sorted, 50), 2),
    p90Ms: round(percentile(sorted, 90), 2),
    p99Ms: round(percentile(sorted, 99), 2),
    maxMs: round(sorted.length ? sorted[sorted.length - 1] : NaN, 2),
    sent: result.requests.sent,
    completed,
    ok2xx: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes,
    /** Requests written but never answered (cut off when the run ended, or failed with a socket error). */
    unanswered: Math.max(0, result.requests.sent - completed),
    requestsBuilt: next,
    poolSize: requests.length,
    reusedRequests: Math.max(0, next - requests.length),
    autocannon: {
      requestsAverage: result.requests.average,
      latencyP50Ms: result.latency.p50,
      latencyP99Ms: result.latency.p99,
      latencyAverageMs: result.latency.average,
    },
  };
}

module.exports = { runLoad };
