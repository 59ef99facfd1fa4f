import { Agent, util as undiciUtil, type Dispatcher } from 'undici';
import type { AttemptResult } from './outcome';
import {
  checkEndpointUrl,
  connectOptions,
  createAddressPolicy,
  DestinationRefusedError,
  type Resolver,
} from './ssrf-guard';

export interface SenderOptions {
  /** Overall deadline of one attempt, covering connect, response headers and the body read (ms). */
  timeoutMs: number;
  /** Whether `http://` endpoints are allowed (NOTIFIER_ALLOW_HTTP); `https://` always is. */
  allowHttp: boolean;
  /** CIDRs outside the public Internet that may be delivered to (NOTIFIER_ALLOWED_NETWORKS). */
  allowedNetworks: readonly string[];
  /** How much of a response body is kept as the attempt's excerpt (bytes, default 1024). */
  maxResponseBytes?: number;
  /** Keep-alive connections per origin (default 50). */
  connections?: number;
  /** Host name resolution, for tests; default the system resolver (see the SSRF guard). */
  resolver?: Resolver;
}

export interface SendRequest {
  url: string;
  /** The JSON body, sent as is. */
  body: string;
  /** Signature headers; the sender adds `content-type: application/json` and `user-agent`. */
  headers: Record<string, string>;
}

export interface SendResult {
  result: AttemptResult;
  /** From the call to the end of the body read, or to the failure (ms). */
  durationMs: number;
  /** The first `maxResponseBytes` of the response body as UTF-8; null when there was no response. */
  responseExcerpt: string | null;
}

export interface HttpSender {
  /**
   * POSTs one webhook. Never rejects: every failure of the attempt is a result (`timeout`, `network_error`).
   * An abort by `signal` (shutdown) is reported as `network_error` with code `aborted`; the caller knows it
   * aborted and should not count that attempt against the endpoint.
   */
  send(req: SendRequest, signal?: AbortSignal): Promise<SendResult>;
  /** Closes the pooled connections once in-flight requests finish. */
  close(): Promise<void>;
}

const USER_AGENT = 'ampflow-notifier/1';
/**
 * Past the excerpt, a response body is read and discarded up to this size so the keep-alive connection can be
 * reused; a larger (or announced larger) body is not read: its connection is destroyed.
 */
const DISCARD_LIMIT_BYTES = 64 * 1024;

/** undici's own deadlines: they only back up the overall timeout, so they count as timeouts too. */
const UNDICI_TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/** Distinct endpoint URLs whose check is remembered; past it the cache starts over. */
const URL_CACHE_SIZE = 10_000;

type CheckedUrl = { ok: true; origin: string; path: string } | { ok: false };

class AttemptTimeout extends Error {
  constructor() {
    super('attempt timed out');
    this.name = 'AttemptTimeout';
  }
}

/**
 * The code of a failure as Node or undici names it, looking through `cause` and aggregate errors. Duck-typed
 * rather than `instanceof Error`: errors from Node internals may come from another realm (jest's sandbox).
 */
export function errorCode(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    if (current instanceof DestinationRefusedError) return 'destination_refused';
    const { code, errors, cause, name } = current as {
      code?: unknown;
      errors?: unknown;
      cause?: unknown;
      name?: unknown;
    };
    if (code === 'ERR_DESTINATION_REFUSED') return 'destination_refused';
    if (typeof code === 'string' && code !== '') return code;
    const inner: unknown = Array.isArray(errors) && errors.length > 0 ? errors[0] : cause;
    if (inner === undefined) return typeof name === 'string' && name !== '' ? name : 'UNKNOWN';
    current = inner;
  }
  return 'UNKNOWN';
}

/**
 * The notifier's HTTP client: one pooled keep-alive undici `Agent` whose connections resolve host names through
 * the SSRF guard at connect time, so the address checked is the address connected to. IP-literal hosts never
 * reach a lookup (Node skips it for them), so every URL is checked first by {@link checkEndpointUrl}.
 * Redirects are not followed (undici's Agent only follows them with an interceptor): a 3xx is a status.
 */
export function createHttpSender(options: SenderOptions): HttpSender {
  const policy = createAddressPolicy(options.allowedNetworks);
  const maxResponseBytes = options.maxResponseBytes ?? 1024;
  const { timeoutMs, allowHttp } = options;
  const agent = new Agent({
    connections: options.connections ?? 50,
    pipelining: 1,
    connect: { ...connectOptions(policy, options.resolver), timeout: timeoutMs },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });

  // Endpoint URLs repeat: the scheme and IP-literal verdict of each is computed once (BlockList checks allocate).
  const checkedUrls = new Map<string, CheckedUrl>();
  function checkUrl(url: string): CheckedUrl {
    let checked = checkedUrls.get(url);
    if (checked === undefined) {
      const verdict = checkEndpointUrl(url, { policy, allowHttp });
      checked = verdict.ok
        ? { ok: true, origin: verdict.url.origin, path: `${verdict.url.pathname}${verdict.url.search}` }
        : { ok: false };
      if (checkedUrls.size >= URL_CACHE_SIZE) checkedUrls.clear();
      checkedUrls.set(url, checked);
    }
    return checked;
  }

  /**
   * One attempt through undici's dispatcher API with a handler of our own (no response stream, no
   * AbortController, no body dump): the excerpt is kept from the data as it comes, up to
   * `DISCARD_LIMIT_BYTES` more is read and dropped so the connection goes back to the pool, and a larger or
   * announced-larger body, the deadline and the caller's abort destroy the connection (undici's `abort`).
   */
  function send(req: SendRequest, signal?: AbortSignal): Promise<SendResult> {
    const startedAt = performance.now();
    const elapsed = () => performance.now() - startedAt;
    const checked = checkUrl(req.url);
    if (!checked.ok) {
      return Promise.resolve({
        result: { kind: 'network_error', code: 'destination_refused' },
        durationMs: elapsed(),
        responseExcerpt: null,
      });
    }
    if (signal?.aborted) {
      return Promise.resolve({
        result: { kind: 'network_error', code: 'aborted' },
        durationMs: 0,
        responseExcerpt: null,
      });
    }
    return new Promise<SendResult>((resolve) => {
      let settled = false;
      let timedOut = false;
      /** undici's abort of this request, once it is on a connection; the reason to abort with before that. */
      let abort: ((reason?: Error) => void) | undefined;
      let abortReason: Error | undefined;
      let status = 0;
      let headers: Record<string, string | string[] | undefined> = {};
      const chunks: Buffer[] = [];
      let kept = 0;
      let received = 0;
      /** Bytes read at most before the connection is destroyed (the excerpt and what is worth draining). */
      let readLimit = maxResponseBytes + DISCARD_LIMIT_BYTES;

      const cancel = (reason: Error) => {
        if (abort) abort(reason);
        else abortReason ??= reason;
      };
      const finish = (result: SendResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onCallerAbort);
        resolve(result);
      };
      const failed = (error: unknown) =>
        finish({
          result:
            timedOut || UNDICI_TIMEOUT_CODES.has(errorCode(error))
              ? { kind: 'timeout' }
              : { kind: 'network_error', code: signal?.aborted ? 'aborted' : errorCode(error) },
          durationMs: elapsed(),
          responseExcerpt: null,
        });
      const responded = () =>
        finish({
          result: { kind: 'response', status, headers },
          durationMs: elapsed(),
          responseExcerpt: kept === 0 ? '' : Buffer.concat(chunks, kept).toString('utf8'),
        });
      const timer = setTimeout(() => {
        timedOut = true;
        const error = new AttemptTimeout();
        failed(error);
        cancel(error);
      }, timeoutMs);
      const onCallerAbort = () => {
        const reason = signal?.reason instanceof Error ? signal.reason : new Error('aborted');
        failed(reason);
        cancel(reason);
      };
      signal?.addEventListener('abort', onCallerAbort, { once: true });

      const handler: Dispatcher.DispatchHandler = {
        onConnect(undiciAbort) {
          abort = undiciAbort;
          if (abortReason) undiciAbort(abortReason);
        },
        onHeaders(statusCode, rawHeaders) {
          status = statusCode;
          headers = undiciUtil.parseHeaders(rawHeaders);
          // Announced larger than what is worth draining: the excerpt, then the connection is destroyed.
          const length = Number(headers['content-length']);
          if (length > readLimit) readLimit = maxResponseBytes;
          return true;
        },
        onData(chunk) {
          received += chunk.length;
          if (kept < maxResponseBytes) {
            const part =
              kept + chunk.length <= maxResponseBytes ? chunk : chunk.subarray(0, maxResponseBytes - kept);
            chunks.push(part);
            kept += part.length;
          }
          if (received > readLimit || (readLimit === maxResponseBytes && received === readLimit)) {
            responded();
            cancel(new Error('response body not read to the end'));
            return false;
          }
          return true;
        },
        onComplete() {
          responded();
        },
        onError(error) {
          failed(error);
        },
      };
      try {
        agent.dispatch(
          {
            origin: checked.origin,
            path: checked.path,
            method: 'POST',
            headers: { ...req.headers, 'content-type': 'application/json', 'user-agent': USER_AGENT },
            body: req.body,
          },
          handler,
        );
      } catch (error) {
        failed(error);
      }
    });
  }

  return {
    send,
    close: () => agent.close(),
  };
}
