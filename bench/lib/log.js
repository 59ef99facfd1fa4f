'use strict';

const path = require('node:path');

/** The repository root and bench/results (git-ignored JSON reports). */
const ROOT = path.resolve(__dirname, '..', '..');
const RESULTS_DIR = path.join(__dirname, '..', 'results');

function log(message) {
  process.stdout.write(`[bench] ${message}\n`);
}

module.exports = { ROOT, RESULTS_DIR, log };
