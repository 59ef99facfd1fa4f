import { mget, slotPipeline, type RedisClient as Redis } from '@ampflow/runtime/redis';
import type {
  ChargingSession,
  CommandResult,
  DeviceLink,
  VehicleError,
  VehicleTelemetry,
} from '@ampflow/contracts';
import type { AvroCodec } from '@ampflow/kafka';
import type { Logger } from '@ampflow/observability';
import { DependencyError } from '@ampflow/runtime';
import type { DeadLetterInfo } from '../delivery/durable-writer';
import type { DoneMarks } from '../delivery/done-marks';
import type { WorkItem } from '../delivery/work-item';
import { endpointMatches, subscribesTo, type Endpoint } from '../endpoints/model';
import {
  fromChargingSession,
  fromCommandResult,
  fromDeviceLink,
  fromPlugChange,
  fromTelemetry,
  fromVehicleError,
  toBody,
  type CustomerEvent,
} from '../events/customer-events';
import { applyPlugReading, type PlugEventType, type PlugState } from '../events/plug-state';
import {
  enrich,
  mergeVehicle,
  observationsOf,
  type CanonicalRecord,
  type KnownVehicle,
} from '../events/vehicle-directory';
import { counterChildren, type NotifierMetrics } from '../metrics';
import type { ConsumedRecord as PipelineRecord, TakeHandler as BatchHandler } from '@ampflow/kafka';

/** The source topics and which canonical record each carries. */
export interface SourceTopics {
  telemetry: string;
  sessions: string;
  commands: string;
  deviceLinks: string;
  errors: string;
}

export interface StoredMessage {
  id: string;
  type: string;
  body: string;
  routing: CustomerEvent['routing'];
  sourceTimestampMs: number;
  /** The endpoints it is sent to (for the message log; not kept with the body). */
  endpointIds?: string[];
}

export interface FanoutDeps {
  codec: Pick<AvroCodec, 'decode'>;
  redis: Redis;
  /** Redis key prefix (default `ampflow:notifier`). */
  namespace: string;
  /** How long vehicle attributes and plug states are kept in Redis (default 90 days). */
  stateTtlSeconds: number;
  topics: SourceTopics;
  endpoints: { list(): Endpoint[] };
  submit(item: WorkItem, signal: AbortSignal): Promise<boolean>;
  /** A source record that cannot be read: kept in the deliveries DLQ with the reason (`false`: stopping first). */
  deadLetterSource(record: PipelineRecord, info: DeadLetterInfo, signal: AbortSignal): Promise<boolean>;
  saveMessages(messages: StoredMessage[]): void;
  /** Which deliveries were already done, so a record read again after a crash is not delivered twice. */
  marks?: DoneMarks;
  metrics: NotifierMetrics;
  logger: Logger;
  now?: () => number;
}

type Decoded =
  | { record: PipelineRecord; canonical: CanonicalRecord; timestampMs: number }
  | { record: PipelineRecord; error: unknown };

/**
 * The fan-out: each source record becomes customer events (plug changes decided per vehicle in partition
 * order, attributes learned and filled in from the vehicle directory in Redis), and each event one work item
 * per subscribed endpoint, handed to the dispatcher. A record is done once all its deliveries are.
 */
export function createFanoutHandler(deps: FanoutDeps): BatchHandler {
  const { redis, topics, metrics } = deps;
  const now = deps.now ?? Date.now;
  const countEvent = counterChildren(metrics.events, 'type');
  const vehicleKey = (id: string) => `${deps.namespace}:vehicle:${id}`;
  const plugKey = (id: string) => `${deps.namespace}:plug:${id}`;
  /** The plug event a reading fired, by its event id: a reading read again fires it again, whatever came since. */
  const firedKey = (eventId: string) => `${deps.namespace}:plug-fired:${eventId}`;

  async function decode(record: PipelineRecord): Promise<Decoded> {
    const timestampMs = Number(record.message.timestamp);
    try {
      const value = await deps.codec.decode(record.message.value);
      switch (record.topic) {
        case topics.telemetry:
          return { record, timestampMs, canonical: { kind: 'telemetry', record: value as VehicleTelemetry } };
        case topics.sessions:
          return {
            record,
            timestampMs,
            canonical: { kind: 'session', record: value as ChargingSession, receivedAt: timestampMs },
          };
        case topics.commands:
          return { record, timestampMs, canonical: { kind: 'command', record: value as CommandResult } };
        case topics.deviceLinks:
          return { record, timestampMs, canonical: { kind: 'device-link', record: value as DeviceLink } };
        case topics.errors:
          return {
            record,
            timestampMs,
            canonical: { kind: 'error', record: value as VehicleError, receivedAt: timestampMs },
          };
        default:
          return { record, error: new Error(`no mapping for topic ${record.topic}`) };
      }
    } catch (error) {
      if (error instanceof DependencyError) throw error;
      return { record, error };
    }
  }

  /** The customer events a record makes before enrichment and plug decisions (pure: ids known before any read). */
  function baseEvents(c: CanonicalRecord, timestampMs: number): CustomerEvent[] {
    switch (c.kind) {
      case 'telemetry':
        return [fromTelemetry(c.record)];
      case 'session':
        return [fromChargingSession(c.record, timestampMs)];
      case 'command':
        return [fromCommandResult(c.record)];
      case 'device-link':
        return [fromDeviceLink(c.record)];
      case 'error':
        return [fromVehicleError(c.record)];
    }
  }

  /** The plug event a telemetry reading fires, if it fires one: its type follows from the reading alone. */
  const plugTypeOf = (reading: VehicleTelemetry): PlugEventType =>
    reading.isPluggedIn ? 'vehicle.plugged_in' : 'vehicle.unplugged';

  return async (records, signal) => {
    const decoded = await Promise.all(records.map(decode));
    const vehicleIds = new Set<string>();
    const plugVehicles = new Set<string>();
    const plugReadings: string[] = [];
    for (const d of decoded) {
      if ('error' in d) continue;
      for (const o of observationsOf(d.canonical)) vehicleIds.add(o.vehicleId);
      const c = d.canonical;
      if (c.kind === 'telemetry' || c.kind === 'session' || c.kind === 'error')
        vehicleIds.add(c.record.vehicleId);
      if (c.kind === 'command' && c.record.targetType === 'VEHICLE') vehicleIds.add(c.record.targetId);
      if (c.kind === 'telemetry' && c.record.isPluggedIn !== null) {
        plugVehicles.add(c.record.vehicleId);
        plugReadings.push(firedKey(c.record.eventId));
      }
    }
    // One MGET per batch for everything read: the vehicle directory, plug states, plug events fired before, and
    // the done marks (with their generation) of every delivery the batch may make: each event's id is known
    // before the read (a plug event's type follows from its reading), and its endpoints are among those
    // subscribed to its type. A delivery outside that guess (an endpoint added meanwhile) is checked after.
    const marks = deps.marks;
    const subscribers = deps.endpoints.list();
    const markKeys: string[] = [];
    const guessMarks = (messageId: string, type: string) => {
      if (!marks) return;
      for (const endpoint of subscribers)
        if (subscribesTo(endpoint, type)) markKeys.push(marks.sourceKeyOf(messageId, endpoint.id));
    };
    const base = decoded.map((d) => {
      if ('error' in d) return [];
      const events = baseEvents(d.canonical, d.timestampMs);
      for (const event of events) guessMarks(event.id, event.type);
      const c = d.canonical;
      if (c.kind === 'telemetry' && c.record.isPluggedIn !== null) {
        const type = plugTypeOf(c.record);
        if (subscribers.some((endpoint) => subscribesTo(endpoint, type)))
          guessMarks(fromPlugChange(c.record, type).id, type);
      }
      return events;
    });
    const vehicleKeys = [...vehicleIds].map(vehicleKey);
    const plugKeys = [...plugVehicles].map(plugKey);
    const readKeys = [...vehicleKeys, ...plugKeys, ...plugReadings];
    if (marks && markKeys.length > 0) readKeys.push(marks.generationKey, ...markKeys);
    let values: Array<string | null> = [];
    if (readKeys.length > 0) {
      try {
        values = await mget(redis, readKeys);
      } catch (error) {
        throw new DependencyError('redis_unavailable', 'Redis read of the vehicle directory failed', {
          cause: error,
        });
      }
    }
    let at0 = 0;
    const section = <T>(keys: string[]): Map<string, T> => {
      const found = new Map<string, T>();
      keys.forEach((key, i) => {
        const value = values[at0 + i];
        if (value) found.set(key, JSON.parse(value) as T);
      });
      at0 += keys.length;
      return found;
    };
    const vehicles = section<KnownVehicle>(vehicleKeys);
    const plugs = section<PlugState>(plugKeys);
    const firedBefore = section<PlugEventType>(plugReadings);
    /** Done marks read with the batch: key → done, and the generation read with them. */
    const guessed = new Map<string, boolean>();
    let guessedGeneration = 0;
    if (marks && markKeys.length > 0) {
      const check = marks.interpret(values[at0] ?? null, values.slice(at0 + 1), 'source');
      guessedGeneration = check.generation;
      markKeys.forEach((key, i) => guessed.set(key, check.done[i]!));
    }
    const newlyFired = new Map<string, PlugEventType>();
    const known = new Map<string, KnownVehicle>();
    for (const id of vehicleIds) {
      const k = vehicles.get(vehicleKey(id));
      if (k) known.set(id, k);
    }
    const changedVehicles = new Set<string>();
    const changedPlugs = new Map<string, PlugState>();

    const perRecord: CustomerEvent[][] = decoded.map((d, i) => {
      if ('error' in d) return [];
      for (const observation of observationsOf(d.canonical)) {
        const before = known.get(observation.vehicleId) ?? null;
        const after = mergeVehicle(before, observation);
        if (after !== before) {
          known.set(observation.vehicleId, after);
          changedVehicles.add(observation.vehicleId);
        }
      }
      const c = d.canonical;
      const events = [...base[i]!];
      if (c.kind === 'telemetry' && c.record.isPluggedIn !== null) {
        // Read before (a restart, a rebalance, a retried batch): the plug event it fired, fired again with
        // the same id, although the vehicle's state has moved on since.
        const fired =
          firedBefore.get(firedKey(c.record.eventId)) ?? newlyFired.get(firedKey(c.record.eventId));
        if (fired) {
          events.push(fromPlugChange(c.record, fired));
        } else {
          const key = plugKey(c.record.vehicleId);
          const previous = changedPlugs.get(key) ?? plugs.get(key) ?? null;
          const decision = applyPlugReading(previous, c.record);
          if (decision.state !== previous && decision.state !== null) {
            changedPlugs.set(key, decision.state);
          }
          if (decision.event) {
            newlyFired.set(firedKey(c.record.eventId), decision.event);
            events.push(fromPlugChange(c.record, decision.event));
          }
        }
      }
      return events.map((event) => enrich(event, known));
    });

    // Learned attributes and plug states are written before the deliveries start, so that the next batch
    // sees them; losing them (Redis flushed) only costs enrichment and one plug change per vehicle.
    if (changedVehicles.size > 0 || changedPlugs.size > 0 || newlyFired.size > 0) {
      const pipeline = slotPipeline(redis);
      for (const id of changedVehicles)
        pipeline.set(vehicleKey(id), JSON.stringify(known.get(id)), 'EX', deps.stateTtlSeconds);
      for (const [key, state] of changedPlugs)
        pipeline.set(key, JSON.stringify(state), 'EX', deps.stateTtlSeconds);
      for (const [key, type] of newlyFired)
        pipeline.set(key, JSON.stringify(type), 'EX', deps.stateTtlSeconds);
      try {
        const results = await pipeline.exec();
        const failed = results?.find(([error]) => error);
        if (failed) throw failed[0];
      } catch (error) {
        throw new DependencyError('redis_unavailable', 'Redis write of the vehicle directory failed', {
          cause: error,
        });
      }
    }

    const endpoints = deps.endpoints.list();
    const messages: StoredMessage[] = [];
    const at = now();
    // Work items per record, then one look-up of which were already done (a record read again after a crash).
    const itemsPerRecord: WorkItem[][] = decoded.map((d, i) => {
      if ('error' in d) return [];
      const items: WorkItem[] = [];
      for (const event of perRecord[i]!) {
        countEvent(event.type).inc();
        const targets = endpoints.filter((endpoint) => endpointMatches(endpoint, event));
        if (targets.length === 0) continue;
        const body = JSON.stringify(toBody(event));
        messages.push({
          id: event.id,
          type: event.type,
          body,
          routing: event.routing,
          sourceTimestampMs: d.timestampMs,
          endpointIds: targets.map((endpoint) => endpoint.id),
        });
        for (const endpoint of targets) {
          items.push({
            messageId: event.id,
            endpointId: endpoint.id,
            type: event.type,
            body,
            routing: event.routing,
            attempt: 1,
            dueAt: at,
            sourceTimestampMs: d.timestampMs,
            reason: 'new',
          });
        }
      }
      return items;
    });
    const keys = itemsPerRecord.map((items) => items.map((item) => marks?.keyOf(item, 'source') ?? ''));
    const allKeys = keys.flat();
    // Read with the batch above; a delivery outside the guess (rare) has the whole batch checked again.
    const check = !marks
      ? { done: [], generation: 0 }
      : allKeys.every((key) => guessed.has(key))
        ? { done: allKeys.map((key) => guessed.get(key)!), generation: guessedGeneration }
        : await marks.done(allKeys, 'source');
    let flag = 0;
    const completions = decoded.map((d, i) => {
      if ('error' in d) {
        deps.logger.warn(
          { err: d.error, topic: d.record.topic, offset: d.record.message.offset },
          'a source record could not be read; kept in the deliveries dead-letter topic',
        );
        return deps.deadLetterSource(
          d.record,
          {
            reason: 'undecodable',
            attempts: 0,
            lastStatus: null,
            lastError: d.error instanceof Error ? d.error.message : String(d.error),
            failedAt: at,
          },
          signal,
        );
      }
      const deliveries = itemsPerRecord[i]!.map((item, j) => {
        if (check.done[flag++]) return Promise.resolve(true);
        const key = keys[i]![j]!;
        return deps.submit(item, signal).then((durable) => {
          if (durable) deps.marks?.mark(key, check.generation);
          return durable;
        });
      });
      return Promise.all(deliveries).then((done) => done.every(Boolean));
    });
    if (messages.length > 0) deps.saveMessages(messages);
    return completions;
  };
}
