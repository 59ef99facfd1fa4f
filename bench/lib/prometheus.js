'use strict';
/* global fetch, AbortSignal */

/** Just enough of the Prometheus text format to diff the ingress's /metrics around a run. */

function parseMetrics(text) {
  const series = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!match) continue;
    const labels = {};
    for (const pair of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]] = pair[2];
    series.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return series;
}

async function scrapeMetrics(url) {
  const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (response.status !== 200) throw new Error(`${url}: HTTP ${response.status}`);
  return parseMetrics(await response.text());
}

function matches(labels, filter) {
  return Object.entries(filter).every(([key, value]) => labels[key] === value);
}

/** Sum of every series named `name` whose labels include `filter`. */
function sumOf(series, name, filter = {}) {
  return series
    .filter((s) => s.name === name && matches(s.labels, filter))
    .reduce((sum, s) => sum + s.value, 0);
}

/** Cumulative bucket counts of a histogram (summed over other labels), ascending by `le`. */
function buckets(series, name, filter = {}) {
  const byLe = new Map();
  for (const s of series) {
    if (s.name !== `${name}_bucket` || !matches(s.labels, filter)) continue;
    byLe.set(s.labels.le, (byLe.get(s.labels.le) ?? 0) + s.value);
  }
  return [...byLe.entries()]
    .map(([le, count]) => ({ le: le === '+Inf' ? Infinity : Number(le), count }))
    .sort((a, b) => a.le - b.le);
}

/** The upper bound of the bucket holding quantile `q` of the observations between two scrapes. */
function quantileUpperBound(before, after, name, q, filter = {}) {
  const start = new Map(buckets(before, name, filter).map((b) => [b.le, b.count]));
  const delta = buckets(after, name, filter).map((b) => ({
    le: b.le,
    count: b.count - (start.get(b.le) ?? 0),
  }));
  const total = delta.at(-1)?.count ?? 0;
  if (total === 0) return undefined;
  return delta.find((b) => b.count >= q * total)?.le;
}

module.exports = { parseMetrics, scrapeMetrics, sumOf, buckets, quantileUpperBound };
