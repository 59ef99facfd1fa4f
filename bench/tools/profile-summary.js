'use strict';

/**
 * Summarizes a V8 .cpuprofile (from `node --cpu-prof`, e.g. `npm run bench -- ingress` with BENCH_PROFILE=1):
 * busy time by package (self and inclusive) and the top functions by self and inclusive time. Percentages are
 * of the non-idle time.
 *
 *   node bench/tools/profile-summary.js bench/results/profiles/<file>.cpuprofile [--top=25]
 *
 * It also prints the share of self time per **stage** (HTTP, signature checks, JSON, Avro, kafkajs produce /
 * fetch / encode-decode, socket writes, Redis, pino, prom-client, GC, ...): each sample goes to the first
 * frame, from the leaf up, that belongs to a known stage (so a native `writev` under node:net counts as socket
 * I/O, a `Buffer.concat` under kafkajs's encoder as Kafka encoding); samples with no such frame go to
 * "other: <package of the leaf>". `stageShares(profile)` is what `npm run bench -- e2e` with BENCH_PROFILE=1
 * prints per service.
 */
const fs = require('node:fs');
const path = require('node:path');

const { ROOT } = require('../lib/log');

/** Where a function lives: an npm package, a workspace package, Node's internals, or a V8 pseudo-node. */
function ownerOf(callFrame) {
  const url = callFrame.url || '';
  if (!url) {
    if (callFrame.functionName.startsWith('(')) return callFrame.functionName;
    return '(native/V8 builtin)';
  }
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const file = url.startsWith('file://') ? decodeURIComponent(url.slice(7)) : url;
  const modules = file.lastIndexOf('/node_modules/');
  if (modules >= 0) {
    const parts = file.slice(modules + '/node_modules/'.length).split('/');
    return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
  }
  const relative = path.relative(ROOT, file);
  const workspace = relative.match(/^(packages|services)\/([^/]+)\//);
  if (workspace) return `@ampflow/${workspace[2]}`;
  return relative.startsWith('..') ? file : relative;
}

function describe(callFrame) {
  const url = callFrame.url || '';
  if (url.startsWith('node:'))
    return `${callFrame.functionName || '(anonymous)'} ${url}:${callFrame.lineNumber + 1}`;
  const file = url.startsWith('file://') ? decodeURIComponent(url.slice(7)) : url;
  const where = file
    ? `${path.relative(ROOT, file).replace(/^(\.\.\/)+/, '')}:${callFrame.lineNumber + 1}`
    : '';
  return `${callFrame.functionName || '(anonymous)'} ${where}`.trim();
}

/** Node's internals and V8 builtins: only a stage when nothing above them on the stack is one. */
const NODE_STAGES = [
  [
    /^node:(net|internal\/stream_base_commons|internal\/net|internal\/streams|stream|dgram|internal\/js_stream_socket)/,
    'socket I/O (net, streams: writes, reads)',
  ],
  [/^node:(_http_|http|internal\/http)/, 'HTTP (node:http parse/serialize)'],
  [/^node:(internal\/crypto|crypto)/, 'crypto (HMAC, hashes, random)'],
  [/^node:(zlib|internal\/zlib)/, 'compression'],
];

const PACKAGE_STAGES = [
  [/^kafkajs$/, (file) => kafkajsStage(file)],
  [/^(avsc|@kafkajs\/confluent-schema-registry)$/, () => 'Avro (avsc, schema registry client)'],
  [
    /^(ioredis|@ioredis\/.*|redis-parser|redis-errors|cluster-key-slot|denque|standard-as-callback)$/,
    () => 'Redis (ioredis)',
  ],
  [
    /^(pino|pino-std-serializers|sonic-boom|thread-stream|fast-redact|@pinojs\/.*|quick-format-unescaped|on-exit-leak-free|atomic-sleep|safe-stable-stringify|fast-copy|pino-abstract-transport)$/,
    () => 'logging (pino)',
  ],
  [/^(prom-client|tdigest|bintrees)$/, () => 'metrics (prom-client)'],
  [/^(svix|standardwebhooks|@stablelib\/.*|fast-sha256)$/, () => 'signatures (svix)'],
  [
    /^(express|router|body-parser|raw-body|finalhandler|send|serve-static|on-finished|path-to-regexp|content-type|type-is|accepts|negotiator|mime-types|qs|cookie|depd|http-errors|statuses|iconv-lite|media-typer|vary|etag|fresh|parseurl|proxy-addr|forwarded|ipaddr\.js|encodeurl|escape-html|merge-descriptors|utils-merge|debug|ms|content-disposition|range-parser|setprototypeof|toidentifier|unpipe|ee-first|bytes|destroy|call-bound|get-intrinsic|es-errors|math-intrinsics|dunder-proto|side-channel.*|object-inspect|function-bind|hasown|gopd|has-symbols|es-object-atoms|es-define-property|get-proto|call-bind-apply-helpers)$/,
    () => 'HTTP framework (express)',
  ],
  [/^undici$/, () => 'HTTP client (undici)'],
  [/^zod$/, () => 'validation (zod)'],
  [/^@ampflow\//, (file, owner) => `service code (${owner})`],
];

function kafkajsStage(file) {
  if (/\/protocol\/requests\/produce\//.test(file)) return 'kafkajs produce (encode)';
  if (/\/protocol\/requests\/fetch\//.test(file)) return 'kafkajs fetch (decode)';
  if (/\/protocol\/(recordBatch|messageSet|message|encoder|decoder|crc32|request|buffer)/.test(file))
    return 'kafkajs encode/decode (records, CRC)';
  if (/\/network\//.test(file)) return 'kafkajs network (requests, queues)';
  if (/\/producer\//.test(file)) return 'kafkajs producer logic';
  if (/\/consumer\//.test(file)) return 'kafkajs consumer logic';
  return 'kafkajs other (cluster, admin, utils)';
}

function fileOf(callFrame) {
  const url = callFrame.url || '';
  return url.startsWith('file://') ? decodeURIComponent(url.slice(7)) : url;
}

/** The stage of one frame, or undefined when the frame alone does not say (Node internals, builtins). */
function frameStage(callFrame, { nodeToo }) {
  const name = callFrame.functionName;
  if (name === '(garbage collector)') return 'GC';
  if (name === '(program)') return 'V8 runtime (program)';
  const url = callFrame.url || '';
  if (!url) {
    if (name === 'parse' || name === 'stringify') return 'JSON (parse, stringify)';
    return undefined;
  }
  if (url.startsWith('node:')) {
    if (!nodeToo) return undefined;
    for (const [re, stage] of NODE_STAGES) if (re.test(url)) return stage;
    return undefined;
  }
  const owner = ownerOf(callFrame);
  for (const [re, stageOf] of PACKAGE_STAGES) if (re.test(owner)) return stageOf(fileOf(callFrame), owner);
  return `other: ${owner}`;
}

/**
 * The stage a sample belongs to, from its leaf node up: first a package frame or a JSON builtin; Node's own
 * frames (socket, HTTP, crypto) only when they come before any package frame (they are then the work itself,
 * e.g. a write under kafkajs's `sendRequest` is socket I/O). Falls back to the leaf's package.
 */
function stageOfSample(byId, parentOf, leafId) {
  for (let id = leafId; id !== undefined; id = parentOf.get(id)) {
    const frame = byId.get(id).callFrame;
    if (frame.functionName === '(root)') break;
    const stage = frameStage(frame, { nodeToo: true });
    if (stage) return stage;
  }
  const leaf = byId.get(leafId).callFrame;
  return `other: ${ownerOf(leaf)}`;
}

/**
 * Walks a parsed .cpuprofile's samples: `onBusy(node, micros)` for each sample outside `(idle)`, with the node
 * lookups it needs. Returns the busy and idle microseconds and those lookups.
 */
function walkSamples(profile, onBusy) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map();
  for (const node of profile.nodes) for (const child of node.children || []) parentOf.set(child, node.id);
  let busyMicros = 0;
  let idleMicros = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const micros = profile.timeDeltas[i] || 0;
    const node = byId.get(profile.samples[i]);
    if (!node) continue;
    if (node.callFrame.functionName === '(idle)') {
      idleMicros += micros;
      continue;
    }
    busyMicros += micros;
    onBusy(node, micros, byId, parentOf);
  }
  return { busyMicros, idleMicros };
}

/** Self time per stage of a parsed .cpuprofile: `{ busyMicros, idleMicros, stages: [{ stage, ms, percent }] }`. */
function stageShares(profile) {
  const byStage = new Map();
  const { busyMicros, idleMicros } = walkSamples(profile, (node, micros, byId, parentOf) => {
    const stage = stageOfSample(byId, parentOf, node.id);
    byStage.set(stage, (byStage.get(stage) || 0) + micros);
  });
  return {
    busyMicros,
    idleMicros,
    stages: top(byStage, byStage.size, busyMicros).map((r) => ({
      stage: r.key,
      ms: r.ms,
      percent: r.percent,
    })),
  };
}

function summarize(profile) {
  const selfByFunction = new Map();
  const totalByFunction = new Map();
  const selfByOwner = new Map();
  const totalByOwner = new Map();
  const add = (map, key, micros) => map.set(key, (map.get(key) || 0) + micros);

  const { busyMicros, idleMicros } = walkSamples(profile, (node, micros, byId, parentOf) => {
    add(selfByFunction, describe(node.callFrame), micros);
    add(selfByOwner, ownerOf(node.callFrame), micros);
    const functionsOnStack = new Set();
    const ownersOnStack = new Set();
    for (let id = node.id; id !== undefined; id = parentOf.get(id)) {
      const frame = byId.get(id).callFrame;
      if (frame.functionName === '(root)') continue;
      functionsOnStack.add(describe(frame));
      ownersOnStack.add(ownerOf(frame));
    }
    for (const key of functionsOnStack) add(totalByFunction, key, micros);
    for (const key of ownersOnStack) add(totalByOwner, key, micros);
  });
  return { busyMicros, idleMicros, selfByFunction, totalByFunction, selfByOwner, totalByOwner };
}

function top(map, count, busyMicros) {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([key, micros]) => ({
      key,
      ms: Math.round(micros / 1000),
      percent: Math.round((micros / busyMicros) * 1000) / 10,
    }));
}

function printTop(title, rows) {
  process.stdout.write(`\n${title}\n`);
  for (const row of rows) {
    process.stdout.write(
      `${String(row.percent).padStart(6)} %  ${String(row.ms).padStart(7)} ms  ${row.key}\n`,
    );
  }
}

function main() {
  const args = process.argv.slice(2);
  const file = args.find((a) => !a.startsWith('--'));
  const count = Number((args.find((a) => a.startsWith('--top=')) || '--top=25').slice(6));
  if (!file) {
    process.stderr.write('usage: node bench/tools/profile-summary.js <file.cpuprofile> [--top=25]\n');
    process.exit(2);
  }
  const profile = JSON.parse(fs.readFileSync(file, 'utf8'));
  const s = summarize(profile);
  const seconds = (micros) => (micros / 1e6).toFixed(1);
  process.stdout.write(
    `${file}\nbusy ${seconds(s.busyMicros)} s, idle ${seconds(s.idleMicros)} s (percentages are of busy time)\n`,
  );
  printTop('self time by package', top(s.selfByOwner, count, s.busyMicros));
  printTop('inclusive time by package (on the stack)', top(s.totalByOwner, count, s.busyMicros));
  printTop('top functions by self time', top(s.selfByFunction, count, s.busyMicros));
  printTop('top functions by inclusive time', top(s.totalByFunction, count, s.busyMicros));
  const st = stageShares(profile);
  printTop(
    'self time by stage (first known stage from the leaf up)',
    st.stages.map((r) => ({ key: r.stage, ms: r.ms, percent: r.percent })),
  );
}

if (require.main === module) main();

module.exports = { stageShares, summarize };
