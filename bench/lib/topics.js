'use strict';

/**
 * The run's own topics. Every bench run gets a unique prefix, `bench.<runId>.`, passed to every service it
 * starts as KAFKA_TOPIC_PREFIX (the services put it in front of every topic they read or write), so a run
 * never touches the platform's topics (`ev.*`) nor another run's. Everything the run names on Kafka (topics,
 * consumer groups, the aggregator's changelog) and in the registry (`<topic>-value`) starts with that prefix,
 * which is what makes deleting it all at the end safe.
 */
const { CANONICAL_SCHEMA_FILES, Topics, dlqTopic, rawTopic } = require('@ampflow/contracts');

/** What a run prefix looks like; cleanup refuses anything else (an empty prefix would match everything). */
const PREFIX_PATTERN = /^bench\.[A-Za-z0-9_-]+\.$/;

/** `bench.<runId>.` (runId from report.runIdOf: digits, a dash, hex). */
function runPrefix(runId) {
  const prefix = `bench.${runId}.`;
  assertRunPrefix(prefix);
  return prefix;
}

function assertRunPrefix(prefix) {
  if (typeof prefix !== 'string' || !PREFIX_PATTERN.test(prefix)) {
    throw new Error(`not a bench run prefix: ${JSON.stringify(prefix)} (expected bench.<runId>.)`);
  }
}

/** Throws unless every name starts with the run's prefix: the bench never uses a platform topic. */
function assertOwn(prefix, names) {
  assertRunPrefix(prefix);
  const foreign = names.filter((name) => !name.startsWith(prefix));
  if (foreign.length > 0) {
    throw new Error(`bench refuses names outside its run prefix ${prefix}: ${foreign.join(', ')}`);
  }
  return names;
}

/**
 * Throws unless every name is under some bench run prefix (the Kafka helpers check every topic they read,
 * write or create with it, so a platform topic can never reach them).
 */
function assertBenchNames(names) {
  const foreign = names.filter((name) => !/^bench\.[A-Za-z0-9_-]+\./.test(name));
  if (foreign.length > 0) throw new Error(`bench refuses non-bench topics: ${foreign.join(', ')}`);
  return names;
}

/** The service topic names under the run's prefix, as the services derive them from KAFKA_TOPIC_PREFIX. */
function runTopics(prefix) {
  assertRunPrefix(prefix);
  const p = (topic) => `${prefix}${topic}`;
  const raw = [p(rawTopic('smartcar')), p(rawTopic('telematica'))];
  return {
    prefix,
    raw,
    rawDlq: raw.map(dlqTopic),
    canonical: Object.keys(CANONICAL_SCHEMA_FILES).map(p),
    telemetry: p(Topics.vehicleTelemetry),
    telemetryDlq: dlqTopic(p(Topics.vehicleTelemetry)),
    sessions: p(Topics.chargingSessions),
  };
}

module.exports = { runPrefix, assertRunPrefix, assertOwn, assertBenchNames, runTopics };
