import {
  loadConfig,
  port,
  positiveInt,
  redisEnv,
  registryEnv,
  sharedEnv,
  workHealthEnv,
  z,
} from '@ampflow/config';

export const aggregatorEnv = z.object({
  ...sharedEnv,
  ...registryEnv,
  ...redisEnv,
  ...workHealthEnv,
  HTTP_PORT: port(9103),
  /** A session with no reading for this long ends with INACTIVITY_TIMEOUT (6 h). */
  SESSION_INACTIVITY_TIMEOUT_MS: positiveInt(6 * 3600 * 1000),
  /** UPDATED changes of one session at most this often, in provider time; 0 emits one per reading. */
  SESSION_UPDATE_MIN_INTERVAL_MS: z.coerce.number().int().min(0).default(0),
  /** How often the timeout sweeper looks for sessions past their deadline. */
  SESSION_SWEEP_INTERVAL_MS: positiveInt(30_000),
  /** Idle vehicles' state expires from Redis after this (30 days); must exceed the inactivity timeout. */
  VEHICLE_STATE_TTL_SECONDS: positiveInt(30 * 24 * 3600),
  AGGREGATOR_GROUP_ID: z.string().min(1).default('ampflow-session-aggregator'),
  /** Prefix of the aggregator's Redis keys; instances sharing a consumer group must share it. */
  AGGREGATOR_REDIS_NAMESPACE: z.string().min(1).default('ampflow:sessions'),
  /**
   * Compacted topic of every vehicle's latest state and deadline, the durable copy Redis is refilled from when
   * it comes back empty. Default `<AGGREGATOR_GROUP_ID>-state-changelog`: it belongs to the group's offsets.
   */
  AGGREGATOR_CHANGELOG_TOPIC: z.string().min(1).optional(),
  /** Vehicles whose last saved state the instance keeps to skip their Redis load (0: load every chunk). */
  AGGREGATOR_STATE_CACHE_ENTRIES: z.coerce.number().int().min(0).default(20_000),
  SESSIONS_TOPIC_PARTITIONS: positiveInt(6),
  SHUTDOWN_DRAIN_MS: positiveInt(10_000),
});

export type AggregatorConfig = z.infer<typeof aggregatorEnv>;

export function readConfig(env: NodeJS.ProcessEnv = process.env): AggregatorConfig {
  return loadConfig(aggregatorEnv, env);
}
