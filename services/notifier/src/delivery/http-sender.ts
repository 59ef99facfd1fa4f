import { Agent } from 'undici';
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

/** Reads up to `max` bytes of `body` and pauses it there (without destroying it, so it can still be drained). */
function readExcerpt(body: NodeJS.ReadableStream & { destroyed?: boolean }, max: number): Promise<Buffer> {
  if (max <= 0) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (error?: Error) => {
      body.removeListener('data', onData);
      body.removeListener('end', onEnd);
      body.removeListener('error', onError);
      body.removeListener('close', onClose);
      if (error) reject(error);
      else resolve(Buffer.concat(chunks, size).subarray(0, max));
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= max) {
        body.pause();
        done();
      }
    };
    const onEnd = () => done();
    const onError = (error: Error) => done(error);
    // Destroyed without an error (it should not happen while we read): keep what arrived.
    const onClose = () => done();
    body.on('data', onData).once('end', onEnd).once('error', onError).once('close', onClose);
  });
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

  async function send(req: SendRequest, signal?: AbortSignal): Promise<SendResult> {
    const startedAt = performance.now();
    const elapsed = () => performance.now() - startedAt;
    const checked = checkUrl(req.url);
    if (!checked.ok) {
      return {
        result: { kind: 'network_error', code: 'destination_refused' },
        durationMs: elapsed(),
        responseExcerpt: null,
      };
    }
    if (signal?.aborted) {
      return { result: { kind: 'network_error', code: 'aborted' }, durationMs: 0, responseExcerpt: null };
    }
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new AttemptTimeout());
    }, timeoutMs);
    const onCallerAbort = () => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onCallerAbort, { once: true });
    const failed = (error: unknown): SendResult => {
      const result: AttemptResult =
        timedOut || UNDICI_TIMEOUT_CODES.has(errorCode(error))
          ? { kind: 'timeout' }
          : { kind: 'network_error', code: signal?.aborted ? 'aborted' : errorCode(error) };
      return { result, durationMs: elapsed(), responseExcerpt: null };
    };
    try {
      let response;
      try {
        response = await agent.request({
          origin: checked.origin,
          path: checked.path,
          method: 'POST',
          headers: { ...req.headers, 'content-type': 'application/json', 'user-agent': USER_AGENT },
          body: req.body,
          signal: controller.signal,
        });
      } catch (error) {
        return failed(error);
      }
      const { statusCode, headers, body } = response;
      let excerpt: Buffer;
      try {
        excerpt = await readExcerpt(body, maxResponseBytes);
      } catch (error) {
        return failed(error);
      }
      // Drains a small rest so the connection goes back to the pool; dump() never rejects without a signal.
      await body.dump({ limit: DISCARD_LIMIT_BYTES });
      if (timedOut) return failed(new AttemptTimeout());
      return {
        result: { kind: 'response', status: statusCode, headers: { ...headers } },
        durationMs: elapsed(),
        responseExcerpt: excerpt.toString('utf8'),
      };
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onCallerAbort);
    }
  }

  return {
    send,
    close: () => agent.close(),
  };
}
