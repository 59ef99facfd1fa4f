import type { Request, Response } from 'express';
import pino from 'pino';
import { createMetricsRegistry } from '@ampflow/observability';
import { AuthenticationError, DependencyError, ValidationError } from '@ampflow/runtime';
import { rawBodyLimits, type HttpErrorAnswer } from '@ampflow/runtime/http';
import { metricValue } from '@ampflow/testing';
import { IngressBusyError } from './inflight-bytes';
import { RequestDeadlineError, startDeadline } from './request-deadline';
import { createIngressMetrics } from './metrics';
import {
  charsetOf,
  createWebhookRoutes,
  eventTypeLabel,
  isJson,
  outcomeOf,
  readBefore,
} from './webhook-routes';

describe('charsetOf', () => {
  it.each([
    ['application/json', undefined],
    ['application/json; charset=utf-8', 'utf-8'],
    ['application/json;CHARSET="Latin1"', 'latin1'],
    ['application/json; foo=bar; charset=UTF8', 'utf8'],
    [undefined, undefined],
  ])('%s -> %s', (contentType, expected) => {
    expect(charsetOf(contentType)).toBe(expected);
  });
});

describe('isJson', () => {
  it.each([
    ['application/json', true],
    ['Application/JSON; charset=utf-8', true],
    ['application/cloudevents+json', true],
    ['text/plain', false],
    ['text/json', false],
    ['', false],
    [undefined, false],
  ])('%s -> %s', (contentType, expected) => {
    expect(isJson(contentType)).toBe(expected);
  });
});

describe('eventTypeLabel', () => {
  it('keeps known provider types and bounds everything else', () => {
    expect(eventTypeLabel('VEHICLE_STATE')).toBe('VEHICLE_STATE');
    expect(eventTypeLabel('SOMETHING_NEW')).toBe('unknown');
    expect(eventTypeLabel(undefined)).toBe('none');
    expect(eventTypeLabel('none')).toBe('none');
  });
});

describe('outcomeOf', () => {
  it.each([
    [new AuthenticationError('bad_signature', 'no'), 401, 'unauthorized'],
    [new ValidationError('payload_too_large', 'big', { httpStatus: 413 }), 413, 'too_large'],
    [new ValidationError('unsupported_media_type', 'no', { httpStatus: 415 }), 415, 'unsupported_media_type'],
    [new IngressBusyError(100), 503, 'busy'],
    [new DependencyError('kafka_timeout', 'late'), 503, 'unavailable'],
    [new RequestDeadlineError(5_000, 'waiting for Kafka'), 503, 'deadline_exceeded'],
    [new ValidationError('bad_json', 'no'), 400, 'invalid'],
    [new ValidationError('odd', 'no', { httpStatus: 422 }), 422, 'invalid'],
    [new Error('bug'), 500, 'error'],
  ] as const)('%s answered %i is %s', (error, status, outcome) => {
    expect(outcomeOf(error, status)).toBe(outcome);
  });
});

describe('the error hook', () => {
  function aHook() {
    const registry = createMetricsRegistry('ingress', { defaultMetrics: false });
    const metrics = createIngressMetrics(registry, { kafkaReady: () => true, inflightBytes: () => 0 });
    const routes = createWebhookRoutes({
      smartcarManagementToken: 'amt',
      telematicaVerifier: { verify: () => undefined },
      publisher: { publish: () => Promise.reject(new Error('not used')) },
      metrics,
      bodyLimits: rawBodyLimits({ smartcar: 10, telematica: 10 }),
      requestDeadlineMs: 5_000,
      logger: pino({ level: 'silent' }),
    });
    /** A response as far as the hook reads and writes it. */
    const aResponse = (locals: Record<string, unknown>) => {
      const headers: Record<string, string> = {};
      const res = { locals, setHeader: (name: string, value: string) => (headers[name] = value) };
      return { res: res as unknown as Response, headers };
    };
    const answer = (error: unknown, status: number, code: string, locals: Record<string, unknown>) => {
      const { res, headers } = aResponse(locals);
      const hookAnswer: HttpErrorAnswer = {
        error,
        status,
        body: { error: { code, message: 'm' } },
        req: {} as Request,
        res,
        log: pino({ level: 'silent' }),
      };
      routes.onError(hookAnswer);
      return headers;
    };
    return { answer, metrics: () => registry.metrics() };
  }

  it('counts signature and schema failures and records the outcome with provider and event type', async () => {
    const hook = aHook();
    hook.answer(new AuthenticationError('bad_signature', 'no'), 401, 'bad_signature', {
      provider: 'smartcar',
    });
    hook.answer(new ValidationError('schema_mismatch', 'no'), 400, 'schema_mismatch', {
      provider: 'telematica',
      eventType: 'vehicle.soc',
    });

    const metrics = await hook.metrics();
    expect(
      metricValue(metrics, 'ingress_signature_failures_total', {
        provider: 'smartcar',
        reason: 'bad_signature',
      }),
    ).toBe(1);
    expect(
      metricValue(metrics, 'ingress_schema_failures_total', {
        provider: 'telematica',
        reason: 'schema_mismatch',
      }),
    ).toBe(1);
    expect(
      metricValue(metrics, 'ingress_requests_total', {
        provider: 'smartcar',
        event_type: 'none',
        outcome: 'unauthorized',
      }),
    ).toBe(1);
    expect(
      metricValue(metrics, 'ingress_requests_total', {
        provider: 'telematica',
        event_type: 'vehicle.soc',
        outcome: 'invalid',
      }),
    ).toBe(1);
  });

  it('asks providers to come back in 5 s on a 503 only', async () => {
    const hook = aHook();
    expect(hook.answer(new DependencyError('kafka_timeout', 'late'), 503, 'kafka_timeout', {})).toEqual({
      'retry-after': '5',
    });
    expect(hook.answer(new ValidationError('bad_json', 'no'), 400, 'bad_json', {})).toEqual({});
    expect(
      metricValue(await hook.metrics(), 'ingress_requests_total', {
        provider: 'none',
        event_type: 'none',
        outcome: 'unavailable',
      }),
    ).toBe(1);
  });
});

describe('readBefore', () => {
  /** A body reader that finishes only when the test calls `finish`. */
  function aSlowReader() {
    let finish: (err?: unknown) => void = () => undefined;
    return {
      reader: (_req: Request, _res: Response, next: (err?: unknown) => void) => (finish = next),
      finish: (err?: unknown) => finish(err),
    };
  }
  const aResponse = () => {
    const headers: Record<string, string> = {};
    return { res: { setHeader: (n: string, v: string) => (headers[n] = v) } as unknown as Response, headers };
  };

  it('passes a deadline_exceeded error on, with Connection: close, when the body is not read in time; a late reader is ignored', async () => {
    const { reader, finish } = aSlowReader();
    const { res, headers } = aResponse();
    const calls: unknown[] = [];
    const passed = new Promise<void>((resolve) => {
      readBefore(() => startDeadline(20), reader)({} as Request, res, (err?: unknown) => {
        calls.push(err);
        resolve();
      });
    });
    await passed;
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ code: 'request_timeout', httpStatus: 408 });
    expect(headers.connection).toBe('close');
    finish();
    expect(calls).toHaveLength(1);
  });

  it('passes the reader on as it is when the body arrives in time', () => {
    const { reader, finish } = aSlowReader();
    const { res, headers } = aResponse();
    const calls: unknown[] = [];
    readBefore(() => startDeadline(60_000), reader)({} as Request, res, (err?: unknown) => calls.push(err));
    finish();
    expect(calls).toEqual([undefined]);
    expect(headers.connection).toBeUndefined();
  });
});
