import { createServer, type RequestListener, type Server } from 'node:http';
import { Server as NetServer, type AddressInfo } from 'node:net';

export interface RunningHttpServer {
  server: Server;
  /** The bound port (useful when asked for port 0). */
  port: number;
  /** The limits in force, defaults applied (logged at start, e.g.). */
  limits: HttpServerLimits;
  /** Connections open right now. */
  openConnections(): Promise<number>;
  /**
   * Stops accepting connections and lets every request already received finish: responses from then on carry
   * `Connection: close`, idle keep-alive connections are closed, and whatever is still open after
   * `drainTimeoutMs` is destroyed.
   */
  close(drainTimeoutMs: number): Promise<void>;
}

/**
 * What a client may hold of the server. Node's own defaults (headers 60 s, checked every 30 s, no connection
 * limit) let slowloris clients, which send their headers a byte at a time, keep connections for a minute or more.
 */
export interface HttpServerLimits {
  /** Time a client has to send the complete request headers, from its connection (or request) start; 408 past it. Default 10 s. */
  headersTimeoutMs: number;
  /** Time a client has to send a whole request, headers and body; 408 past it. At least `headersTimeoutMs`. Default 30 s. */
  requestTimeoutMs: number;
  /** How long an idle keep-alive connection stays open; longer than typical load balancers' idle timeout. Default 65 s. */
  keepAliveTimeoutMs: number;
  /** Connections open at once; further ones are closed as soon as they are accepted, unanswered. Default 1,000. */
  maxConnections: number;
  /** How often the header and request timeouts are checked (Node's default is 30 s). Default 1 s. */
  connectionsCheckingIntervalMs: number;
}

export const DEFAULT_HTTP_SERVER_LIMITS: Readonly<HttpServerLimits> = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 65_000,
  maxConnections: 1_000,
  connectionsCheckingIntervalMs: 1_000,
};

export interface HttpServerOptions extends Partial<HttpServerLimits> {
  port: number;
  host?: string;
  /**
   * How long a connection accepted just before the stop may take to deliver its request before it counts as
   * idle and is closed.
   */
  idleGraceMs?: number;
  /** Called for each connection closed unanswered because `maxConnections` were already open. */
  onConnectionRefused?: () => void;
}

/** The options' limits with the defaults filled in; refuses a request timeout shorter than the headers timeout. */
export function httpServerLimits(options: Partial<HttpServerLimits>): HttpServerLimits {
  const limits: HttpServerLimits = { ...DEFAULT_HTTP_SERVER_LIMITS };
  for (const name of Object.keys(limits) as (keyof HttpServerLimits)[]) {
    const value = options[name];
    if (value !== undefined) limits[name] = value;
  }
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value <= 0)
      throw new Error(`HTTP server ${name} must be a positive integer, got ${value}`);
  }
  if (limits.requestTimeoutMs < limits.headersTimeoutMs) {
    throw new Error(
      `HTTP server requestTimeoutMs (${limits.requestTimeoutMs}) must be at least headersTimeoutMs (${limits.headersTimeoutMs})`,
    );
  }
  return limits;
}

export async function startHttpServer(
  handler: RequestListener,
  options: HttpServerOptions,
): Promise<RunningHttpServer> {
  const limits = httpServerLimits(options);
  let closing = false;
  const server = createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: limits.connectionsCheckingIntervalMs,
    },
    (req, res) => {
      if (closing) res.setHeader('connection', 'close');
      handler(req, res);
    },
  );
  // Past the limit Node closes a new connection at once and emits 'drop' (nothing is read, nothing answered).
  server.maxConnections = limits.maxConnections;
  const onConnectionRefused = options.onConnectionRefused;
  if (onConnectionRefused) server.on('drop', () => onConnectionRefused());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const idleGraceMs = options.idleGraceMs ?? 500;
  let closed: Promise<void> | undefined;
  return {
    server,
    port,
    limits,
    openConnections: () =>
      new Promise<number>((resolve, reject) =>
        server.getConnections((err, count) => (err ? reject(err) : resolve(count))),
      ),
    close(drainTimeoutMs) {
      closed ??= new Promise<void>((resolve) => {
        closing = true;
        const timers: NodeJS.Timeout[] = [];
        // http.Server#close also closes idle connections at once, which resets a connection accepted a moment
        // ago whose request has not been parsed yet. Stop listening only, and sweep idle connections after a grace.
        NetServer.prototype.close.call(server, () => {
          timers.forEach(clearTimeout);
          resolve();
        });
        const sweep = () => {
          server.closeIdleConnections();
          timers.push(setTimeout(sweep, 100));
        };
        timers.push(setTimeout(sweep, Math.min(idleGraceMs, drainTimeoutMs)));
        timers.push(setTimeout(() => server.closeAllConnections(), drainTimeoutMs));
      });
      return closed;
    },
  };
}
