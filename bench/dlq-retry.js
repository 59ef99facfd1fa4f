'use strict';
/* global fetch, AbortSignal, Buffer */

/**
 * `POST /v1/messages/:id/retry` for a message Redis no longer holds, on a large deliveries DLQ: the lookup it
 * used to make (a scan of the whole DLQ from offset 0, `scanDeadLetters` as the old route called it) against
 * the route as it is now (the dead-letter index of the real notifier). See bench/README.md (`dlq-retry`).
 */
const path = require('node:path');
const pino = require('pino');
const { Partitioners } = require('kafkajs');
const { Topics } = require('@ampflow/contracts');
const { prepare } = require('./lib/infra');
const kafka = require('./lib/kafka');
const { NOTIFIER_MAIN, adminToken, notifierEnv, registerEndpoint } = require('./lib/notifier-service');
const { deleteRedisNamespace } = require('./lib/redis');
const { startTarget, stopTarget, waitForHttpOk, withChildren } = require('./lib/processes');
const { startCountingReceiver } = require('./lib/sinks');
const { scrapeMetrics, sumOf } = require('./lib/prometheus');
const report = require('./lib/report');
const { median, percentile, round } = require('./lib/stats');
const { assertOwn, runPrefix } = require('./lib/topics');

/** The old lookup, from the built notifier (the same function the route called, with sinceMs 0). */
const SCAN_MODULE = path.join(report.ROOT, 'services', 'notifier', 'dist', 'delivery', 'dlq-scan.js');
const READY_TIMEOUT_MS = 120_000;
/** Records per produce call while pre-filling (about 500 KB, under the broker's 1 MB), and calls in flight. */
const FILL_BATCH = 500;
const FILL_IN_FLIGHT = 8;
/** Bound of one retry call (the first waits for the index to read the whole DLQ). */
const CALL_TIMEOUT_MS = 300_000;

/** A delivery's body as the notifier sends it (about 600 bytes, like a `vehicle.telemetry` event). */
function bodyOf(messageId, i) {
  return JSON.stringify({
    id: messageId,
    type: 'vehicle.telemetry',
    timestamp: new Date(1_754_380_800_000 + i * 1_000).toISOString(),
    data: {
      vehicleId: `telematica:bench-${i % 1_000}`,
      provider: 'telematica',
      occurredAt: new Date(1_754_380_800_000 + i * 1_000).toISOString(),
      batteryLevelPercent: 40 + (i % 60),
      rangeKm: 120 + (i % 300),
      isPluggedIn: true,
      chargingState: 'IDLE',
      chargingPowerKw: null,
      chargeLimitPercent: 80,
      odometerKm: 12_000 + i,
      location: null,
      firmwareVersion: '2025.32.1',
      sourceEventType: 'VEHICLE_STATE',
      eventId: `bench-evt-${i}`,
    },
  });
}

/** The DLQ record the notifier's durable writer makes for a delivery that exhausted its schedule. */
function deadLetterOf(messageId, endpointId, i) {
  return {
    key: `${messageId}:${endpointId}`,
    value: Buffer.from(bodyOf(messageId, i)),
    headers: {
      'message-id': messageId,
      'endpoint-id': endpointId,
      'event-type': 'vehicle.telemetry',
      attempts: '8',
      routing: JSON.stringify({
        provider: 'telematica',
        vehicleIds: [`telematica:bench-${i % 1_000}`],
        userId: null,
        sourceId: `bench-evt-${i}`,
      }),
      'source-timestamp': String(1_754_380_800_000 + i * 1_000),
      'last-status': '500',
      'error-code': 'exhausted',
      'error-message': 'HTTP 500',
      'failed-at': new Date().toISOString(),
    },
  };
}

const messageIdOf = (runId, i) => `msg_bench_${runId}_${i}`;

/** Writes `count` dead letters in batches, a few produce calls in flight; returns seconds and records/s. */
async function prefill(brokers, topic, endpointId, runId, count) {
  const producer = kafka
    .quietKafka(brokers, 'ampflow-bench-dlq-fill')
    .producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
  await producer.connect();
  const t0 = Date.now();
  try {
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const from = next;
        next = Math.min(count, next + FILL_BATCH);
        const messages = [];
        for (let i = from; i < next; i++) messages.push(deadLetterOf(messageIdOf(runId, i), endpointId, i));
        await producer.send({ topic, acks: -1, messages });
      }
    };
    await Promise.all(Array.from({ length: FILL_IN_FLIGHT }, worker));
  } finally {
    await producer.disconnect();
  }
  const seconds = (Date.now() - t0) / 1000;
  return { records: count, seconds: round(seconds, 2), perSec: Math.round(count / seconds) };
}

/** Spread over the DLQ: its first and last records, and evenly between (the index does not care where). */
function targetsOf(count, calls) {
  if (calls === 1) return [count - 1];
  return Array.from({ length: calls }, (_, k) => Math.round((k * (count - 1)) / (calls - 1)));
}

/** `POST /v1/messages/:id/retry {endpointId}`: status, parsed body, and the time to the answer. */
async function retryCall(baseUrl, token, messageId, endpointId) {
  const t0 = process.hrtime.bigint();
  const res = await fetch(`${baseUrl}/v1/messages/${encodeURIComponent(messageId)}/retry`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ endpointId }),
    signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
  });
  const text = await res.text();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, body, ms };
}

/** One retry that must be answered 202 {queued: 1}; its time in ms. */
async function retryOnce(baseUrl, token, messageId, endpointId) {
  const { status, body, ms } = await retryCall(baseUrl, token, messageId, endpointId);
  if (status !== 202 || body.queued !== 1)
    throw new Error(`retry of ${messageId}: HTTP ${status} ${JSON.stringify(body).slice(0, 300)}`);
  return ms;
}

/**
 * The first retry after start: answered 503 `dead_letters_loading` while the index is still reading the DLQ
 * (each call waits up to 10 s for it), asked again until it is 202. Time from the first call to the 202.
 */
async function firstRetry(baseUrl, token, messageId, endpointId) {
  const t0 = Date.now();
  for (;;) {
    const { status, body } = await retryCall(baseUrl, token, messageId, endpointId);
    if (status === 202 && body.queued === 1) return { ms: Date.now() - t0 };
    const code = body && body.error && body.error.code;
    if (status !== 503 || code !== 'dead_letters_loading' || Date.now() - t0 > CALL_TIMEOUT_MS)
      throw new Error(`first retry of ${messageId}: HTTP ${status} ${JSON.stringify(body).slice(0, 300)}`);
    report.log('first retry: 503 dead_letters_loading (the index is reading the DLQ); asking again');
  }
}

const heapMiB = (series) => round(sumOf(series, 'nodejs_heap_size_used_bytes') / 2 ** 20, 1);
const rssMiB = (series) => round(sumOf(series, 'process_resident_memory_bytes') / 2 ** 20, 1);

function summary(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    calls: values.length,
    medianMs: round(median(values), 1),
    p90Ms: round(percentile(sorted, 90), 1),
    minMs: round(sorted[0], 1),
    maxMs: round(sorted.at(-1), 1),
    valuesMs: values.map((v) => round(v, 1)),
  };
}

function printReport(r) {
  const { result: x } = r;
  report.printTable(
    [
      'retry lookup (DLQ of ' + r.parameters.records.toLocaleString('en-US') + ')',
      'calls',
      'median ms',
      'p90 ms',
      'min ms',
      'max ms',
    ],
    [
      ['before: scan from offset 0', x.scan.calls, x.scan.medianMs, x.scan.p90Ms, x.scan.minMs, x.scan.maxMs],
      [
        'after: index (HTTP route)',
        x.index.calls,
        x.index.medianMs,
        x.index.p90Ms,
        x.index.minMs,
        x.index.maxMs,
      ],
    ],
  );
  report.printTable(
    ['notifier with the index', 'value'],
    [
      ['pre-fill (records/s)', x.prefill.perSec],
      ['start to /readyz (s)', x.readySeconds],
      ['first retry after /readyz, index reading the DLQ (ms)', x.firstRetryMs],
      ['speed-up (scan median / index median)', x.speedup],
      ['heap used, empty DLQ -> indexed DLQ (MiB)', `${x.memory.emptyHeapMiB} -> ${x.memory.indexedHeapMiB}`],
      ['RSS, empty DLQ -> indexed DLQ (MiB)', `${x.memory.emptyRssMiB} -> ${x.memory.indexedRssMiB}`],
      ['re-sends delivered to the receiver', `${x.delivered} of ${x.queued}`],
    ],
  );
}

async function run(options) {
  const startedAt = new Date().toISOString();
  const infra = prepare(options);
  const runId = report.runIdOf(startedAt);
  const prefix = runPrefix(runId);
  const dlqTopic = `${prefix}${Topics.webhookDeliveriesDlq}`;
  const groupId = `${prefix}notifier`;
  const namespace = `bench:${runId}:notifier`;
  assertOwn(prefix, [dlqTopic, groupId]);
  const token = adminToken();
  const admin = await kafka.connectAdmin(infra.brokers);
  // A loopback receiver for the re-sends (answers 204), so that they end as deliveries, not new dead letters.
  const receiver = await startCountingReceiver();
  try {
    report.log(`run topics: ${prefix}* (KAFKA_TOPIC_PREFIX of the notifier)`);
    // As the notifier creates it: one partition.
    await kafka.createTopics(admin, [dlqTopic], 1);
    const env = notifierEnv({ infra, prefix, groupId, namespace, token });
    const result = await withChildren(async (children) => {
      // 1. The endpoint, registered with a first instance on the empty DLQ (its memory is the baseline).
      const setup = await startTarget('notifier-setup', NOTIFIER_MAIN, { env, children });
      await waitForHttpOk(setup.handle, `${setup.baseUrl}/readyz`, READY_TIMEOUT_MS);
      const { id: endpointId } = await registerEndpoint(setup.baseUrl, token, {
        url: receiver.url,
        eventTypes: ['vehicle.telemetry'],
      });
      const empty = await scrapeMetrics(`${setup.baseUrl}/metrics`);
      await stopTarget(setup.handle);

      // 2. The DLQ: dead letters of messages Redis never held (the bench's namespace has none of them).
      report.log(`pre-filling ${options.dlqRecords} dead letters on ${dlqTopic}`);
      const fill = await prefill(infra.brokers, dlqTopic, endpointId, runId, options.dlqRecords);
      report.log(`pre-filled in ${fill.seconds} s (${fill.perSec} records/s)`);

      // 3. Before: the lookup the route made, in this process, over the same DLQ.
      const { scanDeadLetters } = require(SCAN_MODULE);
      const quiet = pino({ level: 'silent' });
      const scanKafka = kafka.quietKafka(infra.brokers, 'ampflow-bench-dlq-scan');
      const scanMs = [];
      for (const i of targetsOf(options.dlqRecords, options.dlqScanCalls)) {
        const messageId = messageIdOf(runId, i);
        const t0 = process.hrtime.bigint();
        const found = await scanDeadLetters({
          kafka: scanKafka,
          topic: dlqTopic,
          sinceMs: 0,
          keep: (r) => r.messageId === messageId && r.endpointId === endpointId,
          logger: quiet,
          timeoutMs: CALL_TIMEOUT_MS,
        });
        scanMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
        if (found.length !== 1 || found[0].messageId !== messageId)
          throw new Error(`the scan found ${found.length} records for ${messageId}, expected 1`);
        report.log(`scan for record ${i}: ${round(scanMs.at(-1), 0)} ms`);
      }

      // 4. After: the real notifier, started on the full DLQ; the first call waits for its index.
      const t0 = Date.now();
      const notifier = await startTarget('notifier', NOTIFIER_MAIN, { env, children });
      await waitForHttpOk(notifier.handle, `${notifier.baseUrl}/readyz`, READY_TIMEOUT_MS);
      const readySeconds = round((Date.now() - t0) / 1000, 2);
      const { ms: firstRetryMs } = await firstRetry(
        notifier.baseUrl,
        token,
        messageIdOf(runId, options.dlqRecords - 1),
        endpointId,
      );
      report.log(`first retry after start (index reading the DLQ): ${round(firstRetryMs, 0)} ms`);
      const indexMs = [];
      for (const i of targetsOf(options.dlqRecords, options.dlqIndexCalls)) {
        indexMs.push(await retryOnce(notifier.baseUrl, token, messageIdOf(runId, i), endpointId));
      }
      const indexed = await scrapeMetrics(`${notifier.baseUrl}/metrics`);
      const queued = 1 + indexMs.length;
      const deadline = Date.now() + 30_000;
      while (receiver.received < queued && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      const exit = await stopTarget(notifier.handle);

      const scan = summary(scanMs);
      const index = summary(indexMs);
      return {
        prefill: fill,
        scan,
        index,
        speedup: round(scan.medianMs / index.medianMs, 0),
        readySeconds,
        firstRetryMs: round(firstRetryMs, 1),
        memory: {
          emptyHeapMiB: heapMiB(empty),
          indexedHeapMiB: heapMiB(indexed),
          emptyRssMiB: rssMiB(empty),
          indexedRssMiB: rssMiB(indexed),
        },
        queued,
        delivered: receiver.received,
        exit,
      };
    });
    const r = {
      benchmark: 'dlq-retry',
      startedAt,
      finishedAt: new Date().toISOString(),
      parameters: {
        quick: options.quick,
        records: options.dlqRecords,
        scanCalls: options.dlqScanCalls,
        indexCalls: options.dlqIndexCalls,
        dlqTopic,
        partitions: 1,
        method: 'bench/README.md (dlq-retry) at machine.gitCommit',
        notifierEnv: { ...notifierEnv({ infra, prefix, groupId, namespace, token: '<redacted>' }) },
        infrastructure: infra,
      },
      machine: report.machineInfo(),
      result,
    };
    printReport(r);
    report.writeResults('dlq-retry', r);
    return r;
  } finally {
    await receiver.close();
    const deleted = await deleteRedisNamespace(infra.redisUrl, namespace).catch((err) => {
      report.log(`Redis cleanup failed: ${err.message}`);
      return undefined;
    });
    if (deleted !== undefined) report.log(`Redis keys deleted under ${namespace}: ${deleted}`);
    await kafka.deleteRunResources(admin, prefix, { registryUrl: infra.schemaRegistryUrl });
    await admin.disconnect().catch(() => {});
  }
}

module.exports = { run };
