import { Router, type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import type { VehicleTelemetry } from '@ampflow/contracts';
import type { Logger } from '@ampflow/observability';
import { AppError, ValidationError, toHttpError } from '@ampflow/runtime';
import type { NotifierClient } from './notifier-client';
import type { PipelineSampler } from './pipeline';
import { sessionSeries, sessionView, type SessionStore } from './sessions';
import { buildTraces, resolveTraceIds } from './trace';
import type { TraceIndex } from './trace-index';

export interface DataRouterDeps {
  index: TraceIndex;
  sessions: SessionStore;
  notifier: NotifierClient;
  pipeline: PipelineSampler;
  retention: { maxEvents: number; maxAgeMs: number };
  pipelineIntervalMs: number;
  /** The prefixed telemetry topic's stream name as the index keeps it. */
  telemetryStream: string;
  logger: Logger;
}

const id = z.string().trim().min(1, 'must not be empty').max(300, 'must be at most 300 characters');
const traceQuery = z
  .object({
    eventId: id.optional(),
    vehicle: id.optional(),
    limit: z.coerce.number({ error: 'must be a number' }).int().min(1).max(100).default(20),
  })
  .refine((q) => (q.eventId === undefined) !== (q.vehicle === undefined), {
    message: 'give either eventId or vehicle',
  });

function parse<T>(schema: z.ZodType<T>, input: unknown): T {
  const result = schema.safeParse(input);
  if (!result.success) {
    const detail = result.error.issues.map((i) => `${i.path.join('.') || 'query'}: ${i.message}`).join('; ');
    throw new ValidationError('invalid_query', detail);
  }
  return result.data;
}

/** The operator data API, mounted by the console at `/api/ops` behind operator sign-in. */
export function createDataRouter(deps: DataRouterDeps): Router {
  const { index, sessions } = deps;
  const router = Router();
  const retention = () => ({
    maxEvents: deps.retention.maxEvents,
    maxAgeMs: deps.retention.maxAgeMs,
    heldRecords: index.size(),
    oldestRecordAt:
      index.oldestTimestampMs() === null ? null : new Date(index.oldestTimestampMs()!).toISOString(),
  });

  router.get('/trace', async (req, res) => {
    const q = parse(traceQuery, req.query);
    const ids =
      q.eventId !== undefined
        ? resolveTraceIds(index, q.eventId)
        : index.traceIdsOfVehicle(q.vehicle!, q.limit);
    const traces = await buildTraces(index, ids, (m) => deps.notifier.attemptsOf(m));
    res.json({ retention: retention(), data: traces });
  });

  router.get('/vehicles/:vehicle/sessions', (req, res) => {
    res.json({ data: sessions.ofVehicle(String(req.params.vehicle)).map(sessionView) });
  });

  router.get('/sessions/open', (_req, res) => {
    res.json({ data: sessions.open().map(sessionView) });
  });

  router.get('/sessions/:sessionId', (req, res) => {
    const session = sessions.get(String(req.params.sessionId));
    if (!session)
      throw new AppError(
        'session_not_found',
        'no such session in the console (or older than its retention)',
        false,
        404,
      );
    const readings = index
      .recordsOfVehicle(session.vehicleId, deps.telemetryStream)
      .map((r) => r.value as VehicleTelemetry);
    const series = sessionSeries(session, readings);
    res.json({
      session: sessionView(session),
      series,
      // The session's first reading is the one at its start: without it the index no longer holds the
      // beginning (older than the trace retention) and the chart starts late.
      seriesComplete: series[0]?.at === new Date(session.startedAt).toISOString(),
      retention: retention(),
    });
  });

  router.get('/pipeline', (_req, res) => {
    res.json({ intervalMs: deps.pipelineIntervalMs, data: deps.pipeline.samples() });
  });

  router.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const { status, body } = toHttpError(err);
    if (status >= 500) deps.logger.error({ err }, 'console data request failed');
    res.status(status).json(body);
  });
  return router;
}
