import type { AvroCodec, ReliableProducer } from '@ampflow/kafka';
import type { Logger } from '@ampflow/observability';
import { isPermanent, withTimeout } from '@ampflow/runtime';
import type { AggregatorMetrics } from './metrics';
import type { SessionStore } from './redis-session-store';
import { expire, type ReducerSettings } from './session-reducer';
import { changelogOutput, countChanges, deadlineOf, sessionChangeOutput } from './session-outputs';

export interface SweeperDeps {
  store: Pick<
    SessionStore,
    'epoch' | 'due' | 'deadline' | 'forgetDeadline' | 'claim' | 'release' | 'load' | 'save'
  >;
  producer: Pick<ReliableProducer, 'send'>;
  codec: Pick<AvroCodec, 'encode'>;
  settings: ReducerSettings;
  topics: { sessions: string; changelog: string };
  /** Wall clock (epoch ms): deadlines are wall-clock times. */
  now: () => number;
  metrics: Pick<AggregatorMetrics, 'started' | 'ended'>;
  logger: Logger;
  /** True while Redis is being refilled from the changelog: it has no deadlines to find yet. */
  isRestoring: () => boolean;
  /** Redis was found emptied (no restore marker) at `where`: starts the restore. */
  stateReset: (where: 'load' | 'save') => void;
  /** How long one timed-out session may wait for Kafka's acknowledgement, in ms. */
  sendTimeoutMs: number;
  /** Vehicles handled per sweep (default 100); the rest are found by the next sweep. */
  batchSize?: number;
  /** How long a claim on a vehicle keeps other sweepers off it, in ms (default 30 s). */
  claimTtlMs?: number;
}

/** Ends the sessions whose inactivity deadline passed without a reading. */
export interface Sweeper {
  /** One sweep; resolves to how many sessions it ended. An aborted `signal` ends it before the next vehicle. */
  sweep(signal?: AbortSignal): Promise<number>;
}

export function createSweeper(deps: SweeperDeps): Sweeper {
  const { store, settings, topics } = deps;
  const batchSize = deps.batchSize ?? 100;
  const claimTtlMs = deps.claimTtlMs ?? 30_000;

  return {
    async sweep(signal) {
      let ended = 0;
      // An emptied Redis has no deadlines to find: restore it first (the next sweep finds them again).
      if (deps.isRestoring()) return 0;
      const epoch = await store.epoch();
      if (epoch === null) {
        deps.stateReset('load');
        return 0;
      }
      const due = await store.due(deps.now(), batchSize);
      for (const { vehicleId } of due) {
        if (signal?.aborted) break;
        if (!(await store.claim(vehicleId, claimTtlMs))) continue;
        try {
          const loaded = await store.load([vehicleId]);
          if (loaded.epoch !== epoch) {
            if (loaded.epoch === null) deps.stateReset('load');
            break;
          }
          const stored = loaded.states.get(vehicleId);
          if (!stored) {
            // The state expired (idle TTL) but its deadline stayed: drop it, or it fills every sweep.
            await store.forgetDeadline(vehicleId);
            continue;
          }
          // Read after the load: a reading saved before the load moved the deadline (state and deadline are
          // written in one step), and one saved after it makes the compare-and-set below fail. Either way a
          // session that just got a reading is not ended.
          const deadline = await store.deadline(vehicleId);
          if (deadline === null || deadline > deps.now()) continue;
          // The wall-clock deadline passed with no reading: end the session whatever the provider clock says.
          const { state, changes } = expire(stored.state, Number.MAX_SAFE_INTEGER, settings);
          const write = {
            vehicleId,
            expectedRev: stored.rev,
            state,
            deadline: deadlineOf(state, deps.now(), settings.inactivityTimeoutMs),
          };
          let ending;
          try {
            ending = changes.map((c) => sessionChangeOutput(deps.codec, topics.sessions, c).message);
          } catch (error) {
            if (!isPermanent(error)) throw error;
            // Not a reason to stop ending the other vehicles' sessions; this one stays due and is logged again.
            deps.logger.error({ err: error, vehicleId }, 'a timed-out session does not fit its schema');
            continue;
          }
          // The ENDED first, then the state that implies it, then Redis (as the chunk handler does). Bounded, so
          // that a stop while Kafka is away is not held up by the sweep.
          try {
            await withTimeout(
              (async () => {
                if (ending.length > 0) await deps.producer.send(topics.sessions, ending);
                await deps.producer.send(topics.changelog, [
                  changelogOutput(topics.changelog, write, deps.now()).message,
                ]);
              })(),
              deps.sendTimeoutMs,
              'kafka_timeout',
              'Kafka did not acknowledge the timed-out session',
            );
          } catch (error) {
            if (!isPermanent(error)) throw error;
            // Refused for good (a record over its topic's max.message.bytes): as above, the other vehicles go on.
            deps.logger.error({ err: error, vehicleId }, 'Kafka refuses the timed-out session');
            continue;
          }
          const { lost, reset } = await store.save(epoch, [write]);
          if (reset) {
            deps.stateReset('save');
            break;
          }
          if (lost.length === 0) {
            countChanges(deps.metrics, changes);
            ended += changes.length;
          }
        } finally {
          await store.release(vehicleId);
        }
      }
      return ended;
    },
  };
}
