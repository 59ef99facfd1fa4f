import type { Admin } from 'kafkajs';
import { request } from 'undici';
import type { Logger } from '@ampflow/observability';
import {
  RECORDS_IN_COUNTERS,
  counterRate,
  deliveryCounts,
  failureRate,
  parseMetricsText,
  sumOf,
  type Sample,
} from './metrics-text';
import { Ring } from './ring';
import type { ConsoleTopics } from './topics';

/** The trace index consumer's groups (`<prefix><random>`, one per consumer, deleted at stop). */
export const CONSOLE_INDEX_GROUP_PREFIX = 'ampflow-console-index-';

/** One reading of the pipeline's health, for the page's small charts. */
export interface PipelineSample {
  at: string;
  /** Records behind the end of the platform's topics, per consumer group (committed offsets vs end offsets). */
  consumerLag: Record<string, number>;
  /** Records per second each service took in since the previous sample (null: no previous reading). */
  recordsPerSecond: Record<string, number | null>;
  /** Records held by each dead-letter topic that exists (end minus start offsets). */
  deadLetters: Record<string, number>;
  /** Webhook attempts that delivered, per second, since the previous sample. */
  deliveriesPerSecond: number | null;
  /** Failed share of the webhook attempts since the previous sample (0..1); null when none was made. */
  failureRate: number | null;
  /** What could not be read this time (a service down, a broker error), so a gap is explained. */
  errors: string[];
}

export interface PipelineSamplerOptions {
  admin: Pick<Admin, 'listGroups' | 'fetchOffsets' | 'fetchTopicOffsets' | 'listTopics'>;
  topics: ConsoleTopics;
  metricsTargets: { service: string; url: string }[];
  /** How many samples are kept (default 120: 10 minutes at 5 s). */
  capacity?: number;
  /** Longest wait for one service's /metrics, ms (default 2,000). */
  scrapeTimeoutMs?: number;
  /** How often groups without offsets on the platform's topics are looked at again, ms (default 5 minutes). */
  groupRecheckMs?: number;
  logger: Logger;
  now?: () => number;
  /** Reads one /metrics text (default: an HTTP GET with undici, `scrapeTimeoutMs`); for tests. */
  fetchMetrics?: (url: string) => Promise<string>;
}

export interface PipelineSampler {
  /** Takes one sample and keeps it. Never throws: what fails is listed in the sample's `errors`. */
  sample(): Promise<PipelineSample>;
  samples(): PipelineSample[];
}

interface ScrapeReading {
  atMs: number;
  records: number | undefined;
  deliveries?: ReturnType<typeof deliveryCounts>;
}

export function createPipelineSampler(options: PipelineSamplerOptions): PipelineSampler {
  const { admin, topics } = options;
  const now = options.now ?? Date.now;
  const ring = new Ring<PipelineSample>(options.capacity ?? 120);
  const previous = new Map<string, ScrapeReading>();
  const unrelatedGroups = new Set<string>();
  let unrelatedSince = now();
  const recheckMs = options.groupRecheckMs ?? 5 * 60_000;
  const log = options.logger.child({ component: 'pipeline-sampler' });

  async function httpText(url: string): Promise<string> {
    const timeout = options.scrapeTimeoutMs ?? 2_000;
    const res = await request(url, { headersTimeout: timeout, bodyTimeout: timeout });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}`);
    return text;
  }

  const fetchMetrics = options.fetchMetrics ?? httpText;
  const scrape = async (url: string): Promise<Sample[]> => parseMetricsText(await fetchMetrics(url));

  async function endOffsets(topic: string, cache: Map<string, Map<number, { high: number; low: number }>>) {
    let ends = cache.get(topic);
    if (!ends) {
      ends = new Map();
      for (const p of await admin.fetchTopicOffsets(topic))
        ends.set(p.partition, { high: Number(p.high), low: Number(p.low) });
      cache.set(topic, ends);
    }
    return ends;
  }

  async function lagPerGroup(
    errors: string[],
    existing: Set<string>,
    cache: Map<string, Map<number, { high: number; low: number }>>,
  ) {
    if (now() - unrelatedSince > recheckMs) {
      unrelatedGroups.clear();
      unrelatedSince = now();
    }
    const lag: Record<string, number> = {};
    const { groups } = await admin.listGroups();
    for (const { groupId } of groups) {
      // The console's own trace-index groups never commit: their "lag" would only grow and mean nothing.
      if (unrelatedGroups.has(groupId) || groupId.startsWith(CONSOLE_INDEX_GROUP_PREFIX)) continue;
      try {
        const offsets = await admin.fetchOffsets({ groupId });
        const ours = offsets.filter((t) => topics.isPlatformTopic(t.topic) && existing.has(t.topic));
        if (ours.length === 0) {
          // A group that committed on other topics only is another application's: skipped until the recheck.
          // One that has committed nothing yet (a service that just started, before its first record) is asked
          // again at the next sample, so its lag shows as soon as it commits.
          if (offsets.length > 0) unrelatedGroups.add(groupId);
          continue;
        }
        let behind = 0;
        for (const t of ours) {
          const ends = await endOffsets(t.topic, cache);
          for (const p of t.partitions) {
            const end = ends.get(p.partition);
            if (!end) continue;
            const committed = Number(p.offset);
            behind += Math.max(0, end.high - (committed < 0 ? end.low : committed));
          }
        }
        lag[groupId] = behind;
      } catch (err) {
        errors.push(`consumer group ${groupId}: ${(err as Error).message}`);
      }
    }
    return lag;
  }

  return {
    async sample() {
      const atMs = now();
      const errors: string[] = [];
      const cache = new Map<string, Map<number, { high: number; low: number }>>();
      let consumerLag: Record<string, number> = {};
      const deadLetters: Record<string, number> = {};
      try {
        const existing = new Set(await admin.listTopics());
        consumerLag = await lagPerGroup(errors, existing, cache);
        for (const topic of topics.deadLetters) {
          if (!existing.has(topic)) continue;
          const ends = await endOffsets(topic, cache);
          deadLetters[topic] = [...ends.values()].reduce((n, e) => n + (e.high - e.low), 0);
        }
      } catch (err) {
        errors.push(`kafka: ${(err as Error).message}`);
      }

      const recordsPerSecond: Record<string, number | null> = {};
      let deliveriesPerSecond: number | null = null;
      let failure: number | null = null;
      await Promise.all(
        options.metricsTargets.map(async ({ service, url }) => {
          let samples: Sample[];
          try {
            samples = await scrape(url);
          } catch (err) {
            recordsPerSecond[service] = null;
            errors.push(`${service} /metrics: ${(err as Error).message}`);
            return;
          }
          const counter = RECORDS_IN_COUNTERS[service];
          // A labelled counter has no series until it is first incremented: a service that answered without
          // it has counted nothing yet (0), so the first burst after a quiet start has a rate.
          const reading: ScrapeReading = {
            atMs,
            records: counter ? (sumOf(samples, counter) ?? 0) : undefined,
          };
          const before = previous.get(service);
          recordsPerSecond[service] = counterRate(before && { atMs: before.atMs, value: before.records }, {
            atMs,
            value: reading.records,
          });
          if (service === 'notifier') {
            const counts = deliveryCounts(samples);
            reading.deliveries = {
              attempts: counts.attempts ?? 0,
              delivered: counts.delivered ?? 0,
              failed: counts.failed ?? 0,
            };
            deliveriesPerSecond = counterRate(
              before && { atMs: before.atMs, value: before.deliveries?.delivered },
              { atMs, value: reading.deliveries.delivered },
            );
            failure = failureRate(before?.deliveries, reading.deliveries);
          }
          previous.set(service, reading);
        }),
      );
      if (errors.length > 0) log.debug({ errors }, 'pipeline sample incomplete');
      const sample: PipelineSample = {
        at: new Date(atMs).toISOString(),
        consumerLag,
        recordsPerSecond,
        deadLetters,
        deliveriesPerSecond,
        failureRate: failure,
        errors,
      };
      ring.push(sample);
      return sample;
    },
    samples: () => ring.toArray(),
  };
}
