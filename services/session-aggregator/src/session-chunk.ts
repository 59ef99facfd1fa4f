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
import type { SessionStore, StateWrite } from './redis-session-store';
import { initialState, reduce, type ReducerSettings } from './session-reducer';
import { changelogOutput, countChanges, deadlineOf, sessionChangeOutput } from './session-outputs';
import { changelogValueText } from './state-changelog';
import { encodeState } from './state-codec';

export interface SessionChunkDeps {
  codec: Pick<AvroCodec, 'encode' | 'decode'>;
  /** The vehicles' states; its failures are expected as retriable errors (Redis away). */
  store: Pick<SessionStore, 'load' | 'save'>;
  /**
   * Sends the changelog records, after the session changes are acknowledged and before Redis is written; its
   * `messageSizeLimit` says how large a state the changelog takes.
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
}

type Outcome = ChunkOutcome & { deadLetters: NonNullable<ChunkOutcome['deadLetters']> };

/**
 * The aggregator's chunk handler. Decodes the telemetry readings, groups them by vehicle, loads the vehicles'
 * states in one step and applies the readings in order with the pure reducer. The outputs are the session
 * changes; once they are acknowledged, `afterSend` produces each touched vehicle's new state to the changelog
 * and only then saves the states to Redis with compare-and-set. A reading that cannot be decoded, whose session
 * change does not fit the ChargingSession schema, or after which the vehicle's state would be too large for the
 * changelog topic (`record_too_large`), is dead-lettered and not applied: the vehicle's later readings go on from
 * the state before it. (A session change too large for the sessions topic is refused by the producer; the
 * runner then finds its reading by handling the chunk again in halves and dead-letters it, not applied.)
 */
export function createSessionChunkHandler(
  deps: SessionChunkDeps,
): (records: ConsumedRecord[]) => Promise<ChunkOutcome> {
  const { codec, settings, topics, metrics } = deps;

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

  return async (records) => {
    const outcome: Outcome = { outputs: [], deadLetters: [] };
    const byVehicle = await decodeAll(records, outcome);
    const { epoch, states: stored } = await deps.store.load([...byVehicle.keys()]);
    // Never reduce on top of an emptied Redis: every vehicle would look new (second STARTED, lost figures).
    if (epoch === null) throw deps.stateReset('load');
    // Checked before anything is sent: a state the changelog refuses would leave its changes out but unsaved.
    const changelogLimit = byVehicle.size > 0 ? await deps.producer.messageSizeLimit(topics.changelog) : 0;
    const startedAt = deps.now();
    const changes: ChargingSession[] = [];
    // Counted per chunk: a labelled counter's inc per reading costs more than the tally.
    const tally = { applied: 0, duplicate: 0, late: 0 };
    const changeOutputs: OutputRecord[] = [];
    const writes: StateWrite[] = [];
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
          for (const change of result.changes)
            encoded.push(sessionChangeOutput(codec, topics.sessions, change));
          if (result.outcome !== 'duplicate') {
            text = encodeState(result.state);
            const entry = {
              rev: (before?.rev ?? 0) + 1,
              deadline: deadlineOf(result.state, startedAt, settings.inactivityTimeoutMs),
              writtenAt: startedAt,
            };
            checkStateSize(vehicleId, changelogValueText(entry, text), changelogLimit, topics.changelog);
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
        const deadline = deadlineOf(state, deps.now(), settings.inactivityTimeoutMs);
        writes.push({ vehicleId, expectedRev: before?.rev ?? 0, state, stateText, deadline });
      }
    }
    for (const [readingOutcome, n] of Object.entries(tally))
      if (n > 0) metrics.readings.inc({ outcome: readingOutcome }, n);
    outcome.outputs = changeOutputs;
    outcome.afterSend = async () => {
      // In this order: the changes are acknowledged (the runner sent them), then the states that include them,
      // then Redis. A changelog state never gets ahead of the changes it implies: were it acknowledged alone
      // and Redis then lost, the restore would take the readings for applied and their changes never be sent.
      if (writes.length > 0) {
        const writtenAt = deps.now();
        await deps.producer.send(
          topics.changelog,
          writes.map((w) => changelogOutput(topics.changelog, w, writtenAt).message),
        );
      }
      const { lost, reset } = await deps.store.save(epoch, writes);
      if (reset) throw deps.stateReset('save');
      if (lost.length > 0) {
        // Another writer (the sweeper, or an instance that held the partition) changed these vehicles.
        throw new DependencyError('state_conflict', `state of ${lost.length} vehicles changed concurrently`);
      }
      countChanges(metrics, changes);
    };
    return outcome;
  };
}

/** Throws `record_too_large` when the vehicle's state would exceed what the changelog topic takes. */
function checkStateSize(vehicleId: string, value: string, limitBytes: number, topic: string): void {
  const bytes = recordBytes({ key: vehicleId, value });
  if (bytes <= limitBytes) return;
  throw new ValidationError(
    'record_too_large',
    `the vehicle's state after this reading (${bytes} bytes) exceeds what ${topic} accepts (${limitBytes} bytes)`,
    { httpStatus: 413 },
  );
}
