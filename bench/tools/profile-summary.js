'use strict';

/**
 * Summarizes a V8 .cpuprofile (from `node --cpu-prof`, e.g. `npm run bench -- ingress` with BENCH_PROFILE=1):
 * busy time by package (self and inclusive) and the top functions by self and inclusive time. Percentages are
 * of the non-idle time.
 *
 *   node bench/tools/profile-summary.js bench/results/profiles/<file>.cpuprofile [--top=25]
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

function summarize(profile) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map();
  for (const node of profile.nodes) for (const child of node.children || []) parentOf.set(child, node.id);

  const selfByFunction = new Map();
  const totalByFunction = new Map();
  const selfByOwner = new Map();
  const totalByOwner = new Map();
  let busyMicros = 0;
  let idleMicros = 0;
  const add = (map, key, micros) => map.set(key, (map.get(key) || 0) + micros);

  for (let i = 0; i < profile.samples.length; i++) {
    const micros = profile.timeDeltas[i] || 0;
    const node = byId.get(profile.samples[i]);
    if (!node) continue;
    if (node.callFrame.functionName === '(idle)') {
      idleMicros += micros;
      continue;
    }
    busyMicros += micros;
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
  }
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
}

main();
