import type { ChargingSession, VehicleTelemetry } from '@ampflow/contracts';
import {
  recordBytes,
  type AvroCodec,
  type ChunkOutcome,
  type ConsumedRecord,
  type OutputRecord,
  type ReliableProducer,
} from '@ampflow/kafka';
import { DependencyError, ValidationError, isPermanent } from '@ampflow/runtime';
import type { AggregatorMetrics } from './metrics';
import type { SessionStore, StateWrite, StoredState } from './redis-session-store';
import { initialState, reduce, type ReducerSettings } from './session-reducer';
import { changelogOutput, countChanges, deadlineOf, sessionChangeOutput } from './session-outputs';
import { changelogValueText } from './state-changelog';
import { nextOffsetOf, type SavedState, type StateCache } from './state-cache';
import { encodeState } from './state-codec';

export interface SessionChunkDeps {
  codec: Pick<AvroCodec, 'encode' | 'decode'>;
  /** The vehicles' states; its failures are expected as retriable errors (Redis away). */
  store: Pick<SessionStore, 'load' | 'save'>;
  /**
   * Sends the changelog records, after the session changes are acknowledged and before Redis is written. Its
   * `messageSizeLimit` says how large a record the sessions topic and the changelog take: a reading whose change
   * or resulting state would not fit is dead-lettered before anything is sent.
   */
  producer: Pick<ReliableProducer, 'send' | 'messageSizeLimit'>;
  settings: ReducerSettings;
  topics: { sessions: string; changelog: string };
  /** Wall clock (epoch ms), for timeout deadlines and the changelog's `writtenAt`. */
  now: () => number;
  metrics: Pick<AggregatorMetrics, 'readings' | 'started' | 'ended'>;
  /**
   * Redis was found emptied (no restore marker) at `where`: starts the restore and returns the retriable error
   * that fails the chunk, to be retried on a restored Redis.
   */
  stateReset: (where: 'load' | 'save') => Error;
  /**
   * The states this instance saved last, used instead of a load when nobody else can have written them since
   * (`state-cache.ts`); none by default.
   */
  cache?: StateCache;
}

/**
 * Chunks of up to this many records keep their states in the cache (a low rate: chunks of a few records, each
 * would otherwise cost a load); larger ones only drop their vehicles' entries.
 */
export const CACHED_CHUNK_RECORDS = 50;

type Outcome = ChunkOutcome & { deadLetters: NonNullable<ChunkOutcome['deadLetters']> };

/**
 * The aggregator's chunk handler. Decodes the telemetry readings, groups them by vehicle, takes the vehicles'
 * states (from the cache of this instance's last saves, the rest loaded in one step) and applies the readings in
 * order with the pure reducer. The outputs are the session changes; once they are acknowledged, `afterSend`
 * produces each touched vehicle's new state to the changelog and only then saves the states to Redis with
 * compare-and-set. A reading that cannot be decoded, whose session change does not fit the
 * ChargingSession schema, or whose change or resulting state would be too large for its topic
 * (`record_too_large`), is dead-lettered and not applied: the vehicle's later readings go on from the state
 * before it.
 */
export function createSessionChunkHandler(
  deps: SessionChunkDeps,
): (records: ConsumedRecord[]) => Promise<ChunkOutcome> {
  const { codec, settings, topics, metrics, cache } = deps;

  async function decodeAll(records: ConsumedRecord[], outcome: Outcome) {
    const byVehicle = new Map<string, Array<{ index: number; reading: VehicleTelemetry }>>();
    for (const [index, record] of records.entries()) {
      let reading: VehicleTelemetry;
      try {
        reading = (await codec.decode(record.message.value)) as VehicleTelemetry;
      } catch (error) {
        if (!isPermanent(error)) throw error;
        outcome.deadLetters.push({ index, error });
        continue;
      }
      const list = byVehicle.get(reading.vehicleId);
      if (list) list.push({ index, reading });
      else byVehicle.set(reading.vehicleId, [{ index, reading }]);
    }
    return byVehicle;
  }

  /**
   * The states of the chunk's vehicles and the epoch to save them under: cached ones where the cache may be
   * used, the others loaded (one round trip; none when all were cached).
   */
  async function statesOf(records: ConsumedRecord[], vehicleIds: string[], now: number) {
    const first = records[0]!;
    const hit = cache?.lookup(`${first.topic}/${first.partition}`, first.message.offset, vehicleIds, now);
    if (!hit || hit.hits.size === 0) return deps.store.load(vehicleIds);
    if (hit.misses.length === 0) return { epoch: hit.epoch, states: hit.hits };
    const loaded = await deps.store.load(hit.misses);
    if (loaded.epoch === hit.epoch) {
      for (const [vehicleId, stored] of hit.hits) loaded.states.set(vehicleId, stored);
      return loaded;
    }
    // Redis was reset or restored since the cached states were saved: take nothing from the cache.
    cache!.clear();
    return deps.store.load(vehicleIds);
  }

  return async (records) => {
    const outcome: Outcome = { outputs: [], deadLetters: [] };
    const byVehicle = await decodeAll(records, outcome);
    const startedAt = deps.now();
    const { epoch, states: stored } =
      byVehicle.size > 0
        ? await statesOf(records, [...byVehicle.keys()], startedAt)
        : { epoch: null, states: new Map<string, StoredState>() };
    // Never reduce on top of an emptied Redis: every vehicle would look new (second STARTED, lost figures).
    if (byVehicle.size > 0 && epoch === null) throw deps.stateReset('load');
    // Checked before anything is sent: a reading whose change or state a topic would refuse is dead-lettered
    // here, rather than failing the whole chunk's request at the broker.
    const [changelogLimit, sessionsLimit] =
      byVehicle.size > 0
        ? await Promise.all([
            deps.producer.messageSizeLimit(topics.changelog),
            deps.producer.messageSizeLimit(topics.sessions),
          ])
        : [0, 0];
    const changes: ChargingSession[] = [];
    // Counted per chunk: a labelled counter's inc per reading costs more than the tally.
    const tally = { applied: 0, duplicate: 0, late: 0 };
    const changeOutputs: OutputRecord[] = [];
    const writes: StateWrite[] = [];
    /** Vehicles read and left as they were (only duplicates), for the cache. */
    const unchanged: SavedState[] = [];
    for (const [vehicleId, readings] of byVehicle) {
      const before = stored.get(vehicleId);
      // A new vehicle's state starts from its first applied reading (not one dead-lettered below).
      let state = before?.state;
      // The state encoded once per reading: sized against the changelog's limit, and the last one per vehicle
      // is what the changelog and Redis get.
      let stateText: string | undefined;
      for (const { index, reading } of readings) {
        const result = reduce(state ?? initialState(reading), reading, settings);
        const encoded: OutputRecord[] = [];
        let text: string | undefined;
        try {
          for (const change of result.changes) {
            const output = sessionChangeOutput(codec, topics.sessions, change);
            checkRecordSize(output.message, sessionsLimit, topics.sessions, 'session change');
            encoded.push(output);
          }
          if (result.outcome !== 'duplicate') {
            text = encodeState(result.state);
            const entry = {
              rev: (before?.rev ?? 0) + 1,
              deadline: deadlineOf(result.state, startedAt, settings.inactivityTimeoutMs),
              writtenAt: startedAt,
            };
            checkRecordSize(
              { key: vehicleId, value: changelogValueText(entry, text) },
              changelogLimit,
              topics.changelog,
              "vehicle's state",
            );
          }
        } catch (error) {
          if (!isPermanent(error)) throw error;
          // Applying it would store a session that no consumer can read, or a state the changelog cannot keep;
          // the next readings go on without it.
          outcome.deadLetters.push({ index, error });
          continue;
        }
        tally[result.outcome] += 1;
        if (text !== undefined) stateText = text;
        state = result.state;
        for (const change of result.changes) changes.push(change);
        for (const output of encoded) changeOutputs.push(output);
      }
      if (stateText !== undefined && state) {
        const deadline = deadlineOf(state, startedAt, settings.inactivityTimeoutMs);
        writes.push({ vehicleId, expectedRev: before?.rev ?? 0, state, stateText, deadline });
      } else if (before && before.state.session === null) {
        // Read and left as it was; cached only without an open session (its deadline in Redis is not known here).
        unchanged.push({ vehicleId, rev: before.rev, state: before.state, deadline: null });
      }
    }
    for (const [readingOutcome, n] of Object.entries(tally))
      if (n > 0) metrics.readings.inc({ outcome: readingOutcome }, n);
    outcome.outputs = changeOutputs;
    outcome.afterSend = async () => {
      // In this order: the changes are acknowledged (the runner sent them), then the states that include them,
      // then Redis. A changelog state never gets ahead of the changes it implies: were it acknowledged alone
      // and Redis then lost, the restore would take the readings for applied and their changes never be sent.
      // (Sent together in one request, the two topics' partitions are appended independently; that saved a
      // request per chunk but opened exactly that window, so they are not.)
      if (writes.length > 0) {
        await deps.producer.send(
          topics.changelog,
          writes.map((w) => changelogOutput(topics.changelog, w, startedAt).message),
        );
      }
      // Nothing to save when no reading could be decoded (nothing was loaded either).
      const { lost, reset } =
        epoch === null ? { lost: [], reset: false } : await deps.store.save(epoch, writes);
      if (reset || lost.length > 0) cache?.clear();
      if (reset) throw deps.stateReset('save');
      if (lost.length > 0) {
        // Another writer (the sweeper, or an instance that held the partition) changed these vehicles.
        throw new DependencyError('state_conflict', `state of ${lost.length} vehicles changed concurrently`);
      }
      if (cache && records.length > 0 && epoch !== null) {
        const last = records[records.length - 1]!;
        const source = `${last.topic}/${last.partition}`;
        const next = nextOffsetOf(last.message.offset);
        if (records.length > CACHED_CHUNK_RECORDS) {
          // A backlog: one load per chunk is already cheap per reading, and keeping the states of every chunk
          // would hold tens of thousands of them in memory for no gain the bench could show.
          cache.remember(source, next, epoch, [], startedAt, byVehicle.keys());
        } else {
          const saved: SavedState[] = unchanged;
          for (const w of writes)
            saved.push({
              vehicleId: w.vehicleId,
              rev: w.expectedRev + 1,
              state: w.state,
              deadline: w.deadline,
            });
          cache.remember(source, next, epoch, saved, startedAt);
        }
      }
      countChanges(metrics, changes);
    };
    return outcome;
  };
}

/** Throws `record_too_large` when a record would exceed what its topic accepts. */
function checkRecordSize(
  record: Parameters<typeof recordBytes>[0],
  limitBytes: number,
  topic: string,
  what: string,
): void {
  const bytes = recordBytes(record);
  if (bytes <= limitBytes) return;
  throw new ValidationError(
    'record_too_large',
    `the ${what} after this reading (${bytes} bytes) exceeds what ${topic} accepts (${limitBytes} bytes)`,
    { httpStatus: 413 },
  );
}
