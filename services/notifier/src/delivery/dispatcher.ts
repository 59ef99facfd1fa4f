import type { Logger } from '@ampflow/observability';
import type { AttemptView } from '../admin/delivery-control';
import type { Endpoint } from '../endpoints/model';
import type { HealthStore } from '../health/health-store';
import { counterChildren, statusClass, type NotifierMetrics } from '../metrics';
import {
  CLOSED_CIRCUIT,
  acquire,
  recordFailure,
  recordSuccess,
  shouldDisable,
  type CircuitSettings,
  type CircuitState,
} from './circuit-breaker';
import { DONE_MARK_TTL_SECONDS } from './done-marks';
import type { DeadLetterInfo, DeadLetterReason, DurableWriter } from './durable-writer';
import type { HttpSender } from './http-sender';
import { classifyAttempt, decideOutcome, isEndpointFailure, type Classification } from './outcome';
import type { RetrySchedule } from './retry-schedule';
import { signatureHeaders, signingSecrets } from './signing';
import { emptyBucket, takeToken, type TokenBucket } from './throttle';
import type { WorkItem } from './work-item';

export interface DispatcherSettings {
  schedule: RetrySchedule;
  /** Attempts in flight per endpoint (NOTIFIER_ENDPOINT_CONCURRENCY). */
  concurrency: number;
  /** Deliveries queued in memory per endpoint; beyond it they wait in the first retry tier (default 1,000). */
  maxQueuePerEndpoint: number;
  /** Shortest delay of a delivery moved out of the queue (default 1 s). */
  deferDelayMs?: number;
  /**
   * Longest expected wait in an endpoint's queue (default 2 s): a delivery that would wait longer (a slow or
   * throttled endpoint) waits in a retry tier instead, so the source records of the other endpoints' deliveries
   * are not held up by it.
   */
  maxQueueWaitMs?: number;
  /** An endpoint whose attempts take this long on average is paced by them (default 1 s). */
  slowAttemptMs?: number;
  secretOverlapMs: number;
  circuit: CircuitSettings;
  disableAfterFailingMs: number;
}

/** What the dispatcher needs of the endpoint store. */
export interface EndpointLookup {
  get(id: string): Endpoint | undefined;
  disable(id: string, reason: 'endpoint_gone' | 'failing', nowMs: number): Promise<Endpoint | undefined>;
}

/** What the dispatcher tells the attempt log (Redis, history only). */
export interface AttemptSink {
  record(attempt: AttemptView): void;
  recordDeadLetter(view: {
    messageId: string;
    endpointId: string;
    eventType: string;
    reason: string;
    lastStatus: number | null;
    lastError: string | null;
    failedAt: string;
    attempts: number;
  }): void;
  clearDeadLetter(messageId: string, endpointId: string): void;
}

/** Operational events the dispatcher raises (the app turns them into deliveries). */
export interface OperationalEvents {
  /**
   * Each resolves `true` once the event's deliveries are written to Kafka, `false` when `signal` aborted
   * (stopping) before every one was.
   */
  endpointDisabled(
    endpoint: Endpoint,
    reason: 'endpoint_gone' | 'failing',
    failingSince: number | null,
    signal?: AbortSignal,
  ): Promise<boolean>;
  endpointRecovered(endpoint: Endpoint, failingSince: number | null, signal?: AbortSignal): Promise<boolean>;
  attemptsExhausted(item: WorkItem, info: DeadLetterInfo, signal?: AbortSignal): Promise<boolean>;
}

export interface Dispatcher {
  /**
   * Delivers one work item now (its due time has come): resolves `true` once it is delivered or durably
   * scheduled (a retry tier, the DLQ), `false` when the process is stopping before that.
   */
  submit(item: WorkItem, signal?: AbortSignal): Promise<boolean>;
  /** Deliveries queued in memory, over all endpoints. */
  queued(): number;
  openCircuits(): number;
  /** Waits for attempts in flight (and their writes) to finish. */
  drain(): Promise<void>;
  /**
   * Forgets an endpoint's health (circuit, failing-since clock): when it is re-enabled or its URL changes, the
   * failures of before say nothing about it any more (without this, the 5-day rule would disable a re-enabled
   * endpoint at its first failure).
   */
  resetHealth(endpointId: string): void;
  /** An endpoint's circuit (the deployment's, from the health store; closed when none), for the admin API. */
  circuitOf(endpointId: string): CircuitState;
}

interface Job {
  item: WorkItem;
  signal?: AbortSignal;
  resolve: (durable: boolean) => void;
}

interface Lane {
  queue: Job[];
  active: number;
  /** Token bucket of `throttleRate` (starts empty). */
  bucket: TokenBucket;
  wake?: NodeJS.Timeout;
  /** Moving average of the endpoint's attempt duration, ms (its pace, with `concurrency`). */
  avgAttemptMs: number;
  /** Deliveries this instance moved to a retry tier for this endpoint that have not come back yet. */
  parked: number;
}

/**
 * The delivery worker: per endpoint a bounded queue, a concurrency limit, a token-bucket throttle and a circuit
 * breaker, so one slow or failing endpoint never holds up another. It is given only the deliveries of the
 * endpoints whose deliveries partition this instance holds (one instance per endpoint), so its limits are the
 * deployment's; the circuit and the failing-since clock live in the health store, which the next owner reads.
 * Each attempt is signed, sent, classified and followed by exactly one durable step: delivered, a retry
 * written to its tier, or a dead letter.
 * A delivery that cannot be attempted now (queue full, circuit open) is written to a retry tier without
 * spending an attempt; the caller's offset then moves on.
 */
export function createDispatcher(deps: {
  settings: DispatcherSettings;
  endpoints: EndpointLookup;
  sender: HttpSender;
  writer: DurableWriter;
  attempts: AttemptSink;
  operational: OperationalEvents;
  /**
   * Endpoint health (circuit, failing-since), shared by the deployment through a compacted topic; absent (unit
   * tests), it is kept in this process's memory only.
   */
  health?: Pick<HealthStore, 'get' | 'set' | 'reset' | 'openCircuits'>;
  metrics: NotifierMetrics;
  logger: Logger;
  now?: () => number;
  random?: () => number;
}): Dispatcher {
  const { settings, writer, metrics } = deps;
  const now = deps.now ?? Date.now;
  const log = deps.logger.child({ component: 'dispatcher' });
  const lanes = new Map<string, Lane>();
  const health = deps.health ?? memoryHealth();
  /** `endpoint.disabled` events this process has written, by endpoint id and disable time. */
  const disabledAnnounced = new Set<string>();
  const inFlight = new Set<Promise<void>>();
  let queuedTotal = 0;
  const deliveries = counterChildren(metrics.deliveries, 'outcome', 'status_class');

  const laneOf = (endpointId: string): Lane => {
    let lane = lanes.get(endpointId);
    if (!lane) {
      lane = {
        queue: [],
        active: 0,
        bucket: emptyBucket(now()),
        avgAttemptMs: 50,
        parked: 0,
      };
      lanes.set(endpointId, lane);
    }
    return lane;
  };

  /**
   * Stopping, or a partition moved: deliveries still queued with that partition's signal are let go (not
   * durable, so not committed). One listener per signal, not per job: a signal outlives thousands of jobs, and
   * an EventTarget with thousands of listeners makes every add and remove slow.
   */
  const watched = new WeakSet<AbortSignal>();
  function watch(signal: AbortSignal) {
    if (watched.has(signal)) return;
    watched.add(signal);
    signal.addEventListener(
      'abort',
      () => {
        for (const lane of lanes.values()) {
          const keep: Job[] = [];
          for (const job of lane.queue) {
            if (job.signal === signal) job.resolve(false);
            else keep.push(job);
          }
          setQueued(keep.length - lane.queue.length);
          lane.queue = keep;
        }
      },
      { once: true },
    );
  }

  const setQueued = (delta: number) => {
    queuedTotal += delta;
    metrics.queued.set(queuedTotal);
  };

  const openCircuits = () => health.openCircuits();
  const refreshCircuitGauge = () => metrics.openCircuits.set(openCircuits());

  async function deadLetter(item: WorkItem, info: DeadLetterInfo, signal?: AbortSignal): Promise<boolean> {
    const written = await writer.deadLetter(item, info, signal);
    if (written) indexDeadLetter(item, info);
    return written;
  }

  function indexDeadLetter(item: WorkItem, info: DeadLetterInfo): void {
    deps.attempts.recordDeadLetter({
      messageId: item.messageId,
      endpointId: item.endpointId,
      eventType: item.type,
      reason: info.reason,
      lastStatus: info.lastStatus,
      lastError: info.lastError,
      failedAt: new Date(info.failedAt).toISOString(),
      attempts: info.attempts,
    });
  }

  /** Writes a work item to its retry tier; `true` once durable (there, or as a dead letter when too large). */
  async function schedule(item: WorkItem, signal?: AbortSignal): Promise<boolean> {
    const result = await writer.schedule(item, signal);
    if (result === 'dead_lettered') indexDeadLetter(item, tooLargeInfo(item));
    return result !== 'abandoned';
  }

  async function defer(job: Job, atMs: number, reason: 'queue_full' | 'circuit_open'): Promise<void> {
    // Strictly later than the record it replaces: a record woken a millisecond early (timers may) and deferred
    // again must not get the same identity, or its done mark would make the new record look done.
    const dueAt = Math.max(atMs, job.item.dueAt + 1);
    const result = await writer.schedule({ ...job.item, dueAt, reason: 'deferred' }, job.signal);
    if (result === 'scheduled') metrics.deferred.inc({ reason });
    if (result === 'dead_lettered') indexDeadLetter(job.item, tooLargeInfo(job.item));
    job.resolve(result !== 'abandoned');
  }

  /** For the attempt log's dead-letter index: the writer dead-lettered a work item its tier refused. */
  function tooLargeInfo(item: WorkItem): DeadLetterInfo {
    return {
      reason: 'record_too_large',
      attempts: item.attempt - 1,
      lastStatus: null,
      lastError: null,
      failedAt: now(),
    };
  }

  function disabledInfo(item: WorkItem, reason: DeadLetterReason, at: number): DeadLetterInfo {
    return { reason, attempts: item.attempt - 1, lastStatus: null, lastError: null, failedAt: at };
  }

  function pump(endpointId: string) {
    const lane = lanes.get(endpointId);
    if (!lane) return;
    const endpoint = deps.endpoints.get(endpointId);
    while (lane.queue.length > 0 && lane.active < settings.concurrency) {
      if (!endpoint || !endpoint.enabled) {
        // Deleted or disabled while queued: settle the rest through `submit`'s checks.
        const job = lane.queue.shift()!;
        setQueued(-1);
        void start(lane, job, () => settleUnavailable(job));
        continue;
      }
      const at = now();
      const permit = acquire(health.get(endpointId), at, settings.circuit);
      if (!permit.allowed) {
        // Paused: everything queued waits in Kafka until the probe is due (no attempt spent).
        const jobs = lane.queue.splice(0);
        setQueued(-jobs.length);
        for (const job of jobs)
          void start(lane, job, () => defer(job, permit.retryAtMs, 'circuit_open'), false);
        return;
      }
      if (endpoint.throttleRate !== null) {
        const taken = takeToken(lane.bucket, endpoint.throttleRate, at);
        lane.bucket = taken.bucket;
        if (!taken.allowed) {
          if (!lane.wake) {
            lane.wake = setTimeout(() => {
              lane.wake = undefined;
              pump(endpointId);
            }, taken.waitMs);
            lane.wake.unref();
          }
          return;
        }
      }
      // A probe turns the circuit half-open (the next owner must not send a second one).
      if (permit.probe) health.set(endpointId, permit.state);
      const job = lane.queue.shift()!;
      setQueued(-1);
      void start(lane, job, () => attempt(lane, endpoint, job));
    }
  }

  /**
   * Runs `task` as one of the lane's active slots (when `counts`), then pumps the lane again. One async
   * function, not `.catch().finally()` on the task: one promise per delivery instead of three.
   */
  function start(lane: Lane, job: Job, task: () => Promise<void>, counts = true): Promise<void> {
    if (counts) lane.active += 1;
    const slot: { run?: Promise<void> } = {};
    const run = (async () => {
      try {
        await task();
      } catch (error) {
        // Not an attempt's outcome (those are handled) but a failure around it, e.g. the endpoint store not
        // taking a write in time: the delivery is tried again later rather than left unfinished, which would
        // hold its partition's committed offset for good.
        log.error(
          { err: error, endpointId: job.item.endpointId },
          'delivery failed unexpectedly; trying it again later',
        );
        const dueAt = Math.max(now() + 5_000, job.item.dueAt + 1);
        job.resolve(await schedule({ ...job.item, dueAt, reason: 'deferred' }, job.signal));
      } finally {
        if (counts) lane.active -= 1;
        // The task awaited at least once, so `slot.run` is set by now.
        if (slot.run) inFlight.delete(slot.run);
        pump(job.item.endpointId);
      }
    })();
    slot.run = run;
    inFlight.add(run);
    return run;
  }

  async function settleUnavailable(job: Job): Promise<void> {
    const { item } = job;
    const endpoint = deps.endpoints.get(item.endpointId);
    if (!endpoint) {
      // Deleted: nobody to deliver to, nothing to keep.
      deliveries('endpoint_deleted', 'none').inc();
      job.resolve(true);
      return;
    }
    // A disabling by this service (not by an operator) whose `endpoint.disabled` may not have been written: the
    // record that disabled it was not committed (a stop came between the two) and is read again here. The event
    // is written again, identical in id and due time, so its done mark keeps a repeat from reaching subscribers;
    // past the marks' lifetime nothing is written again.
    const reason = endpoint.disabledReason;
    const disabledMs = endpoint.disabledAt === null ? NaN : Date.parse(endpoint.disabledAt);
    const announced =
      (reason === 'failing' || reason === 'endpoint_gone') &&
      now() - disabledMs < DONE_MARK_TTL_SECONDS * 1_000
        ? await announceDisabled(endpoint, reason, null, job.signal)
        : true;
    const written = await deadLetter(item, disabledInfo(item, 'endpoint_disabled', now()), job.signal);
    job.resolve(announced && written);
  }

  /** Writes `endpoint.disabled` once per disabling in this process; false when the write was abandoned. */
  async function announceDisabled(
    endpoint: Endpoint,
    reason: 'endpoint_gone' | 'failing',
    failingSince: number | null,
    signal: AbortSignal | undefined,
  ): Promise<boolean> {
    const key = `${endpoint.id}:${endpoint.disabledAt}`;
    if (disabledAnnounced.has(key)) return true;
    const written = await deps.operational.endpointDisabled(endpoint, reason, failingSince, signal);
    if (written) disabledAnnounced.add(key);
    return written;
  }

  async function attempt(lane: Lane, endpoint: Endpoint, job: Job): Promise<void> {
    const { item } = job;
    const startedAt = now();
    // The first attempt of a delivery, also when it first waited for capacity or a circuit (deferred).
    if (item.attempt === 1 && (item.reason === 'new' || item.reason === 'deferred')) {
      metrics.lagSeconds.observe(Math.max(0, startedAt - item.sourceTimestampMs) / 1_000);
    }
    const secrets = signingSecrets(endpoint.secrets, startedAt, settings.secretOverlapMs);
    const headers = signatureHeaders(item.messageId, new Date(startedAt), item.body, secrets);
    const sent = await deps.sender.send({ url: endpoint.url, body: item.body, headers });
    const at = now();
    metrics.attemptSeconds.observe(sent.durationMs / 1_000);
    lane.avgAttemptMs = 0.8 * lane.avgAttemptMs + 0.2 * sent.durationMs;
    const classification = classifyAttempt(sent.result, at);
    const status = 'status' in classification ? classification.status : null;
    const failureKind = sent.result.kind === 'response' ? undefined : sent.result.kind;
    const error = errorText(classification, sent.result);
    const before = health.get(endpoint.id);
    const wasPaused = before.status !== 'closed';
    const failingSince = before.failingSince;
    let circuit = before;
    if (isEndpointFailure(classification)) circuit = recordFailure(before, at, settings.circuit);
    else if (classification.kind === 'success') circuit = recordSuccess(before);
    if (circuit !== before) health.set(endpoint.id, circuit);
    if (before.status === 'closed' && circuit.status === 'open') {
      metrics.circuitsOpened.inc();
      log.warn(
        { endpointId: endpoint.id, consecutiveFailures: circuit.consecutiveFailures },
        'circuit opened: deliveries to this endpoint wait for the cool-down',
      );
    }
    // The gauge: refreshed when this circuit changed, not after every attempt.
    if (wasPaused !== (circuit.status !== 'closed')) refreshCircuitGauge();

    const view = (next: AttemptView['next'], nextAttemptAt: number | null = null): AttemptView => ({
      messageId: item.messageId,
      endpointId: item.endpointId,
      eventType: item.type,
      attempt: item.attempt,
      status: classification.kind === 'success' ? 'succeeded' : 'failed',
      httpStatus: status,
      durationMs: Math.round(sent.durationMs),
      responseExcerpt: sent.responseExcerpt,
      error,
      at: new Date(startedAt).toISOString(),
      next,
      nextAttemptAt: nextAttemptAt === null ? null : new Date(nextAttemptAt).toISOString(),
    });
    const count = (outcome: string) => deliveries(outcome, statusClass(status, failureKind)).inc();
    const lastFailure = (reason: DeadLetterReason): DeadLetterInfo => ({
      reason,
      attempts: item.attempt,
      lastStatus: status,
      lastError: error,
      failedAt: at,
    });

    // The 5-day rule (and 410): the endpoint is disabled, this message kept as a dead letter for `recover`.
    const gone = classification.kind === 'endpoint_gone';
    if (
      gone ||
      (isEndpointFailure(classification) && shouldDisable(circuit, at, settings.disableAfterFailingMs))
    ) {
      const reason = gone ? 'endpoint_gone' : 'failing';
      deps.attempts.record(view('disabled'));
      count('endpoint_disabled');
      const disabled = await deps.endpoints.disable(endpoint.id, reason, at);
      // Done only once `endpoint.disabled` is written too: after a stop in between, the record is read again,
      // finds the endpoint disabled and writes the event then (settleUnavailable).
      const announced = disabled
        ? await announceDisabled(disabled, reason, circuit.failingSince, job.signal)
        : true;
      const written = await deadLetter(
        item,
        lastFailure(gone ? 'endpoint_gone' : 'endpoint_disabled'),
        job.signal,
      );
      job.resolve(announced && written);
      return;
    }

    const outcome = decideOutcome(classification, item.attempt, at, settings.schedule, deps.random);
    switch (outcome.action) {
      case 'delivered': {
        deps.attempts.record(view('done'));
        if (item.reason === 'manual_retry' || item.reason === 'recover')
          deps.attempts.clearDeadLetter(item.messageId, item.endpointId);
        count('delivered');
        if (wasPaused) await deps.operational.endpointRecovered(endpoint, failingSince, job.signal);
        job.resolve(true);
        return;
      }
      case 'retry': {
        const next: WorkItem = {
          ...item,
          attempt: outcome.attemptNumber,
          dueAt: outcome.atMs,
          reason: 'retry',
        };
        const result = await writer.schedule(next, job.signal);
        if (result === 'scheduled') {
          deps.attempts.record(view('retry', outcome.atMs));
          count('retry_scheduled');
        } else if (result === 'dead_lettered') {
          // Too large for its retry tier: the writer kept it as a dead letter instead.
          deps.attempts.record(view('dead_letter'));
          count('dead_lettered');
          indexDeadLetter(item, { ...lastFailure('record_too_large'), lastError: error });
        }
        job.resolve(result !== 'abandoned');
        return;
      }
      case 'dead_letter': {
        deps.attempts.record(view('dead_letter'));
        count('dead_lettered');
        const info = lastFailure(outcome.reason);
        const written = await deadLetter(item, info, job.signal);
        // Done only once the operational event is written too: a stop in between leaves the record uncommitted,
        // and the next reader makes the last attempt again (a failure writes both again, the event same id).
        job.resolve(
          written &&
            (outcome.reason !== 'exhausted' ||
              (await deps.operational.attemptsExhausted(item, info, job.signal))),
        );
        return;
      }
      case 'disable_endpoint':
        // Handled above with the 410 check; kept for exhaustiveness.
        job.resolve(await deadLetter(item, lastFailure('endpoint_gone'), job.signal));
        return;
    }
  }

  return {
    queued: () => queuedTotal,
    openCircuits,
    submit(item, signal) {
      return new Promise<boolean>((resolve) => {
        const job: Job = { item, signal, resolve };
        const endpoint = deps.endpoints.get(item.endpointId);
        const lane = laneOf(item.endpointId);
        if (!endpoint || !endpoint.enabled) {
          void start(lane, job, () => settleUnavailable(job), false);
          return;
        }
        if (item.reason === 'deferred' && lane.parked > 0) lane.parked -= 1;
        // Deliveries per second this endpoint takes: its throttle, and for an endpoint that is slow itself (its
        // attempts take a second or more) its concurrency at that pace. Faster attempts are not taken as the
        // endpoint's pace: under load they mostly measure this process's own event loop, and parking them
        // would only add work (a full queue still parks).
        const slow = lane.avgAttemptMs >= (settings.slowAttemptMs ?? 1_000);
        const pace = Math.min(
          endpoint.throttleRate ?? Infinity,
          slow ? (settings.concurrency * 1_000) / lane.avgAttemptMs : Infinity,
        );
        const expectedWaitMs = (lane.queue.length / pace) * 1_000;
        if (
          lane.queue.length >= settings.maxQueuePerEndpoint ||
          expectedWaitMs > (settings.maxQueueWaitMs ?? 2_000)
        ) {
          // Back when what is queued and parked before it has had its turn (at least 1 s, at most 10 min).
          const delayMs = Math.min(
            600_000,
            Math.max(settings.deferDelayMs ?? 1_000, ((lane.queue.length + lane.parked) / pace) * 1_000),
          );
          lane.parked += 1;
          void start(lane, job, () => defer(job, now() + delayMs, 'queue_full'), false);
          return;
        }
        lane.queue.push(job);
        setQueued(1);
        // Stopping, or the partition moved: a delivery still queued is let go (it is not committed).
        if (signal) watch(signal);
        pump(item.endpointId);
      });
    },
    circuitOf: (endpointId) => health.get(endpointId),
    resetHealth(endpointId) {
      health.reset(endpointId);
      refreshCircuitGauge();
    },
    async drain() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
  };
}

function errorText(classification: Classification, result: { kind: string; code?: string }): string | null {
  if (classification.kind === 'success') return null;
  if (result.kind === 'timeout') return 'timeout';
  if (result.kind === 'network_error') return `network error: ${result.code ?? 'unknown'}`;
  if (classification.kind === 'aborted') return 'receiver answered webhook-delivery: abort-message';
  if (classification.kind === 'endpoint_gone') return 'receiver answered 410 Gone';
  return `HTTP ${'status' in classification ? classification.status : '?'}`;
}

/** Endpoint health in this process's memory (the dispatcher's unit tests; the app passes the shared store). */
function memoryHealth(): Pick<HealthStore, 'get' | 'set' | 'reset' | 'openCircuits'> {
  const states = new Map<string, CircuitState>();
  return {
    get: (endpointId) => states.get(endpointId) ?? CLOSED_CIRCUIT,
    set: (endpointId, state) => void states.set(endpointId, state),
    reset: (endpointId) => void states.delete(endpointId),
    openCircuits: () => [...states.values()].filter((state) => state.status !== 'closed').length,
  };
}
