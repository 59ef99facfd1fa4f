import { createServer, type RequestListener, type Server } from 'node:http';
import { Server as NetServer, type AddressInfo } from 'node:net';

export interface RunningHttpServer {
  server: Server;
  /** The bound port (useful when asked for port 0). */
  port: number;
  /**
   * Stops accepting connections and lets every request already received finish: responses from then on carry
   * `Connection: close`, idle keep-alive connections are closed, and whatever is still open after
   * `drainTimeoutMs` is destroyed.
   */
  close(drainTimeoutMs: number): Promise<void>;
}

export interface HttpServerOptions {
  port: number;
  host?: string;
  /** Node's keep-alive timeout; longer than typical load balancers' idle timeout. */
  keepAliveTimeoutMs?: number;
  /** Upper bound for receiving a whole request. */
  requestTimeoutMs?: number;
  /**
   * How long a connection accepted just before the stop may take to deliver its request before it counts as
   * idle and is closed.
   */
  idleGraceMs?: number;
}

export async function startHttpServer(
  handler: RequestListener,
  options: HttpServerOptions,
): Promise<RunningHttpServer> {
  let closing = false;
  const server = createServer(
    {
      keepAliveTimeout: options.keepAliveTimeoutMs ?? 65_000,
      requestTimeout: options.requestTimeoutMs ?? 30_000,
    },
    (req, res) => {
      if (closing) res.setHeader('connection', 'close');
      handler(req, res);
    },
  );
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
