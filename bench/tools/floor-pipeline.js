'use strict';
/* global __filename, Buffer, setInterval */

/**
 * The floor under the e2e bench's CPU: the platform's shape with nothing of its own. Four plain processes like the
 * four services, on plain kafkajs (the services' client and version), each doing only the hop:
 *
 *   load (undici, steady rate) -> "ingress" (node:http, produce, answer 200 after the broker's ack)
 *     -> topic A -> "normalizer" (consume, produce) -> topic B -> "aggregator" (consume, produce)
 *     -> topic C -> "notifier" (consume, POST to a sink over a keep-alive pool) -> sink (answer 204)
 *
 * No verification, decoding, Redis, dedup or state: one produce per hop, one fetch per hop, offsets committed
 * every second, like the services at 50/s. What this costs per webhook is what the services' architecture costs
 * on this machine before any of their own work (every process wakes up once or twice per record).
 *
 *   KAFKA_BROKERS=127.0.0.1:19092 node bench/tools/floor-pipeline.js [--rates=50,500] [--seconds=40]
 *     [--client=kafkajs|platformatic] [--kafka-pid=N]
 *
 * Prints per rate the CPU of each process (cores and µs per webhook) and the broker's (when its pid is known:
 * --kafka-pid, else the java process listening on the broker's port), and writes bench/results/floor-<ts>.json.
 */
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { fork } = require('node:child_process');
const { jitCpuSeconds, pidListeningOn, processCpuSeconds } = require('../lib/cpu');
const { startCountingReceiver } = require('../lib/sinks');

const ROLES = ['ingress', 'normalizer', 'aggregator', 'notifier', 'sink'];

function kafkaClient(clientId, brokers) {
  const { Kafka, logLevel } = require('kafkajs');
  return new Kafka({ clientId, brokers, logLevel: logLevel.NOTHING });
}

/**
 * The hop's Kafka client: `send(topic, [{ key, value }])` acknowledged by all in-sync replicas and idempotent
 * (as the services' reliable producer), and `consume(groupId, topic, handle)` handing records to `handle` in
 * batches, offsets committed every second. kafkajs: a fetched batch per partition, its offset committed once
 * `handle` is done. @platformatic/kafka (its stream yields records one by one): the records that arrive while a
 * `handle` is in flight go together in the next, like kafkajs's batches; its autocommit commits what was
 * fetched. The request counts match (one fetch and one produce per batch, a commit per second); what is committed
 * when does not matter here. A failed `handle` ends the process (the floor measures the happy path only).
 */
async function clientOf(kind, clientId, brokers) {
  if (kind === 'platformatic') {
    const pk = require('@platformatic/kafka');
    const producer = new pk.Producer({ clientId, bootstrapBrokers: brokers, idempotent: true });
    return {
      send: (topic, messages) =>
        producer.send({
          acks: pk.ProduceAcks.ALL,
          messages: messages.map((m) => ({ topic, key: Buffer.from(m.key), value: Buffer.from(m.value) })),
        }),
      consume: async (groupId, topic, handle) => {
        const consumer = new pk.Consumer({
          clientId,
          bootstrapBrokers: brokers,
          groupId,
          maxWaitTime: 1_000,
        });
        const stream = await consumer.consume({
          topics: [topic],
          autocommit: 1_000,
          mode: pk.MessagesStreamModes.COMMITTED,
          fallbackMode: pk.MessagesStreamFallbackModes.EARLIEST,
          maxWaitTime: 1_000,
        });
        let pending = [];
        let inFlight = false;
        const next = () => {
          if (inFlight || pending.length === 0) return;
          const batch = pending;
          pending = [];
          inFlight = true;
          handle(batch).then(
            () => {
              inFlight = false;
              next();
            },
            (err) => {
              console.error(`floor: ${clientId} failed: ${err?.message ?? err}`);
              process.exit(1);
            },
          );
        };
        stream.on('data', (m) => {
          pending.push(m);
          next();
        });
      },
    };
  }
  const kafka = kafkaClient(clientId, brokers);
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  return {
    send: (topic, messages) => producer.send({ topic, acks: -1, messages }),
    consume: async (groupId, topic, handle) => {
      const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 1_000, heartbeatInterval: 3_000 });
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      // Offsets committed every second, as the services do (kafkajs's autocommit commits after every batch).
      const done = new Map();
      setInterval(() => {
        const offsets = [...done.values()];
        done.clear();
        if (offsets.length > 0) consumer.commitOffsets(offsets).catch(() => undefined);
      }, 1_000).unref();
      await consumer.run({
        autoCommit: false,
        partitionsConsumedConcurrently: 6,
        eachBatch: async ({ batch }) => {
          await handle(batch.messages);
          const offset = String(Number(batch.messages.at(-1).offset) + 1);
          done.set(batch.partition, { topic: batch.topic, partition: batch.partition, offset });
        },
      });
    },
  };
}

async function role(name, config) {
  const { topics, sinkPort, runId } = config;
  if (name === 'sink') {
    const sink = await startCountingReceiver({ port: sinkPort });
    process.on('message', (m) => m === 'count' && process.send({ received: sink.received }));
    process.send({ ready: true });
    return;
  }
  const client = await clientOf(config.client, `floor-${name}`, config.brokers);
  if (name === 'ingress') {
    const server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        client.send(topics[0], [{ key: req.headers['x-key'], value: body }]).then(
          () => res.writeHead(200).end('{"status":"accepted"}'),
          () => res.writeHead(503).end(),
        );
      });
    });
    server.listen(config.ingressPort, '127.0.0.1', () => process.send({ ready: true }));
    return;
  }
  if (name === 'notifier') {
    const { Pool } = require('undici');
    const pool = new Pool(`http://127.0.0.1:${sinkPort}`, { connections: 10 });
    await client.consume(`${runId}-notifier`, topics[2], (messages) =>
      Promise.all(
        messages.map(async (m) => {
          const res = await pool.request({ path: '/hook', method: 'POST', body: m.value });
          await res.body.dump();
        }),
      ),
    );
    process.send({ ready: true });
    return;
  }
  const [from, to] = name === 'normalizer' ? [topics[0], topics[1]] : [topics[1], topics[2]];
  await client.consume(`${runId}-${name}`, from, (messages) =>
    client.send(
      to,
      messages.map((m) => ({ key: m.key, value: m.value })),
    ),
  );
  process.send({ ready: true });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function freePort() {
  const server = http.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * CPU of each process over a window: cores, µs per webhook, and the four hop processes + broker together (the
 * sink is the customer's, not the platform's). `cpu` maps a role to its CPU seconds in the window; a process
 * whose CPU could not be read (undefined) is listed in `missing` and left out of the sum. Pure.
 */
function floorRow({ rate, webhooks, wallSeconds, cpu }) {
  const row = { rate, webhooks, seconds: Math.round(wallSeconds * 10) / 10, cores: {}, usPerWebhook: {} };
  let platform = 0;
  for (const [role, seconds] of Object.entries(cpu)) {
    if (seconds === undefined) {
      row.missing = [...(row.missing ?? []), role];
      continue;
    }
    row.cores[role] = Math.round((seconds / wallSeconds) * 1000) / 1000;
    row.usPerWebhook[role] = Math.round((seconds / webhooks) * 1e6);
    if (role !== 'sink') platform += seconds;
  }
  row.fourPlusBrokerCores = Math.round((platform / wallSeconds) * 1000) / 1000;
  return row;
}

/**
 * Runs the floor pipeline on `client` ('kafkajs' or 'platformatic') at each rate (`warmupS` of load, then
 * `seconds` measured), on topics of its own (deleted at the end); returns one row per rate (`floorRow`), each with
 * the webhooks that reached the sink. `kafkaPid`: the broker's process (default: the one listening on the first
 * broker's port), for its CPU. `warmBroker`: first load it until its JIT compilers are quiet (at most 0.02 core
 * over 5 s, at most 180 s), as the e2e bench does: a broker started minutes ago spends up to a third of a core
 * compiling, which one that has run for a day does not.
 */
async function measureFloor({
  brokers: brokerList,
  client,
  rates,
  seconds,
  warmupS = 10,
  kafkaPid,
  warmBroker = true,
  log = () => {},
}) {
  if (!Array.isArray(rates) || rates.length === 0 || !rates.every((r) => r > 0))
    throw new Error(
      `floor: rates must be a non-empty list of positive numbers (got ${JSON.stringify(rates)})`,
    );
  const runId = `floor-${Date.now()}`;
  const topics = ['a', 'b', 'c'].map((t) => `bench.${runId}.${t}`);
  const groups = ['normalizer', 'aggregator', 'notifier'].map((role) => `${runId}-${role}`);
  const admin = kafkaClient('floor-admin', brokerList).admin();
  await admin.connect();
  const children = {};
  const exited = {};
  let stopping = false;
  let pool;
  try {
    await admin.createTopics({
      topics: topics.map((topic) => ({ topic, numPartitions: 6 })),
      waitForLeaders: true,
    });
    const config = {
      topics,
      runId,
      client,
      brokers: brokerList,
      sinkPort: await freePort(),
      ingressPort: await freePort(),
    };
    // Rejects once any process of the pipeline exits before the end (a crashed hop would make the wait for the
    // sink below wait for good).
    let died;
    const death = new Promise((_, reject) => (died = reject));
    death.catch(() => undefined);
    for (const name of ROLES) {
      const child = fork(__filename, ['--role', name, JSON.stringify(config)], { stdio: 'inherit' });
      children[name] = child;
      exited[name] = new Promise((resolve) => child.once('exit', resolve));
      exited[name].then((code) => stopping || died(new Error(`floor: the ${name} process exited (${code})`)));
      await Promise.race([
        new Promise((resolve) => child.once('message', resolve)),
        death,
        sleep(60_000).then(() => {
          throw new Error(`floor: the ${name} process was not ready within 60 s`);
        }),
      ]);
    }
    const { Pool } = require('undici');
    pool = new Pool(`http://127.0.0.1:${config.ingressPort}`, { connections: 50 });
    const body = Buffer.from(JSON.stringify({ event: 'charging', payload: 'x'.repeat(600) }));
    const received = () =>
      Promise.race([
        new Promise((resolve) => {
          children.sink.once('message', (m) => resolve(m.received));
          children.sink.send('count');
        }),
        death,
      ]);
    /** Webhooks the intake answered 200 (stored by the broker), and the others, since the start. */
    const totals = { accepted: 0, failed: 0 };
    /**
     * Sends `rate` x `durationS` webhooks at a steady rate, then waits until the sink has every accepted one,
     * at most 30 s after the last answer (what is missing then shows in `atSink`).
     */
    const drive = async (rate, durationS) => {
      const t0 = Date.now();
      const total = Math.round(rate * durationS);
      const inFlight = [];
      for (let i = 0; i < total; i++) {
        const wait = t0 + (i * 1000) / rate - Date.now();
        if (wait > 0) await sleep(wait);
        inFlight.push(
          pool
            .request({ path: '/webhook', method: 'POST', body, headers: { 'x-key': `v${i % 500}` } })
            .then(async (res) => {
              await res.body.dump();
              if (res.statusCode === 200) totals.accepted += 1;
              else totals.failed += 1;
            })
            .catch(() => (totals.failed += 1)),
        );
      }
      await Promise.race([Promise.all(inFlight), death]);
      const deadline = Date.now() + 30_000;
      for (let n = 1; (await received()) < totals.accepted; n++) {
        if (Date.now() > deadline) {
          log(`floor: ${await received()} of ${totals.accepted} accepted webhooks at the sink after 30 s`);
          return;
        }
        if (n % 100 === 0) log(`floor: ${await received()} of ${totals.accepted} at the sink, waiting`);
        await sleep(50);
      }
    };
    const brokerPid = kafkaPid ?? pidListeningOn(Number(brokerList[0].split(':')[1]));
    const pids = { ...Object.fromEntries(ROLES.map((r) => [r, children[r].pid])), kafka: brokerPid };
    const cpuNow = () =>
      Object.fromEntries(Object.entries(pids).map(([r, pid]) => [r, processCpuSeconds(pid)]));
    if (warmBroker && brokerPid) {
      const until = Date.now() + 180_000;
      for (;;) {
        const before = jitCpuSeconds(brokerPid);
        const t0 = Date.now();
        await drive(rates[0], 5);
        const jitCores = (jitCpuSeconds(brokerPid) - before) / ((Date.now() - t0) / 1000);
        if (!(jitCores > 0.02) || Date.now() > until) {
          log(`floor: broker JIT compilers at ${Math.round(jitCores * 1000) / 1000} core; measuring`);
          break;
        }
      }
    }
    const rows = [];
    for (const rate of rates) {
      await drive(rate, warmupS);
      const sinkBefore = await received();
      const accepted0 = totals.accepted;
      const failed0 = totals.failed;
      const before = cpuNow();
      const wall0 = Date.now();
      await drive(rate, seconds);
      const after = cpuNow();
      const cpu = Object.fromEntries(
        Object.keys(pids).map((r) => [
          r,
          after[r] === undefined || before[r] === undefined ? undefined : after[r] - before[r],
        ]),
      );
      const accepted = totals.accepted - accepted0;
      const row = floorRow({ rate, webhooks: accepted, wallSeconds: (Date.now() - wall0) / 1000, cpu });
      row.failed = totals.failed - failed0;
      row.atSink = (await received()) - sinkBefore;
      rows.push(row);
      log(`floor ${client} ${rate}/s: four processes + broker ${row.fourPlusBrokerCores} cores`);
    }
    // With the request counter preloaded (NODE_OPTIONS=--require bench/tools/kafka-request-counter.js and
    // BENCH_COUNTS_DIR), each kafkajs process writes its Kafka requests per API before it is stopped.
    if (process.env.BENCH_COUNTS_DIR) {
      for (const child of Object.values(children)) child.kill('SIGUSR2');
      await sleep(500);
    }
    return rows;
  } finally {
    stopping = true;
    for (const child of Object.values(children)) child.kill();
    await Promise.race([Promise.all(Object.values(exited)), sleep(10_000)]);
    await pool?.close();
    await admin.deleteGroups(groups).catch(() => undefined);
    await admin.deleteTopics({ topics }).catch(() => undefined);
    await admin.disconnect();
  }
}

async function main() {
  const arg = (name, fallback) => {
    const found = process.argv.find((a) => a.startsWith(`--${name}=`));
    return found ? found.slice(name.length + 3) : fallback;
  };
  const client = arg('client', 'kafkajs');
  const rows = await measureFloor({
    brokers: (process.env.KAFKA_BROKERS || '127.0.0.1:9092').split(','),
    client,
    rates: arg('rates', '50,500').split(',').map(Number),
    seconds: Number(arg('seconds', '40')),
    kafkaPid: Number(arg('kafka-pid', '')) || undefined,
  });
  for (const row of rows) {
    console.log(
      `\n${client}, ${row.rate}/s: ${row.webhooks} webhooks accepted (${row.failed} not) over ${row.seconds} s, ${row.atSink} at the sink`,
    );
    console.table(
      Object.keys(row.cores).map((r) => ({
        process: r,
        cores: row.cores[r],
        'µs per webhook': row.usPerWebhook[r],
      })),
    );
    console.log(`four processes + broker: ${row.fourPlusBrokerCores} cores`);
  }
  const out = path.join(
    __dirname,
    '..',
    'results',
    `floor-${new Date().toISOString().replace(/[:.]/g, '-')}.json`,
  );
  fs.writeFileSync(out, JSON.stringify({ client, rows }, null, 2));
  console.log(`results: ${out}`);
}

module.exports = { floorRow, measureFloor };

if (process.argv[2] === '--role') {
  role(process.argv[3], JSON.parse(process.argv[4])).catch((err) => {
    console.error(err);
    process.exit(1);
  });
} else if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
