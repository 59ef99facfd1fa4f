// Regenerates docs/topics.md from the built contracts package: `npm run docs:topics` (after `npx tsc -b`).
// The rendering lives in packages/contracts/src/topics-doc.ts, so the unit test compares against the same output.
const { writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { renderTopicsDoc } = require('../packages/contracts/dist/topics-doc.js');

const target = join(__dirname, '..', 'docs', 'topics.md');
writeFileSync(target, renderTopicsDoc());
console.log(`wrote ${target}`);
