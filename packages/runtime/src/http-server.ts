import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RunningHttpServer {
  server: Server;
  /** The bound port (useful when asked for port 0). */
  port: number;
  /**
   * Stops accepting connections, lets in-flight requests finish, closes idle keep-alive connections,
   * and destroys whatever is still open after `drainTimeoutMs`.
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
}

export async function startHttpServer(
  handler: RequestListener,
  options: HttpServerOptions,
): Promise<RunningHttpServer> {
  const server = createServer(
    {
      keepAliveTimeout: options.keepAliveTimeoutMs ?? 65_000,
      requestTimeout: options.requestTimeoutMs ?? 30_000,
    },
    handler,
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    server,
    port,
    close(drainTimeoutMs) {
      closing ??= new Promise<void>((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), drainTimeoutMs);
        force.unref();
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}
