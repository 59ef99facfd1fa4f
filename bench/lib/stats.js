'use strict';

function median(values) {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Nearest-rank percentile of an ascending typed array (or array), p in (0, 100]. */
function percentile(sortedValues, p) {
  if (sortedValues.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sortedValues.length);
  return sortedValues[Math.min(sortedValues.length, Math.max(1, rank)) - 1];
}

function round(value, digits = 2) {
  if (!Number.isFinite(value)) return value;
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** `a / b` rounded to 3 digits (NaN when b is not a positive number). */
function ratio(a, b) {
  return b > 0 ? round(a / b, 3) : NaN;
}

/** Median over `runs` of `pick(run)`, rounded to `digits`. */
function medianOf(runs, pick, digits = 2) {
  return round(median(runs.map(pick)), digits);
}

/**
 * Quantile of a histogram's observations, linearly interpolated inside the bucket that holds it (the
 * Prometheus histogram_quantile method). `buckets`: ascending cumulative `{ le, count }`.
 */
function interpolatedQuantile(buckets, q) {
  const total = buckets.at(-1)?.count ?? 0;
  if (total === 0) return undefined;
  const rank = q * total;
  let previousLe = 0;
  let previousCount = 0;
  for (const { le, count } of buckets) {
    if (count >= rank) {
      if (le === Infinity) return previousLe; // above the last finite bound: report that bound
      const inBucket = count - previousCount;
      return inBucket === 0 ? le : previousLe + ((le - previousLe) * (rank - previousCount)) / inBucket;
    }
    previousLe = le;
    previousCount = count;
  }
  return previousLe;
}

module.exports = { median, medianOf, percentile, ratio, round, interpolatedQuantile };
