import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface TcpProxy {
  /** The proxy's port on 127.0.0.1 (fixed at creation, also while it is stopped). */
  port: number;
  /** Starts accepting connections and forwarding them to the target. */
  start(): Promise<void>;
  /** Stops accepting and cuts every open connection, as if the target went away. */
  stop(): Promise<void>;
}

/**
 * A loopback TCP proxy to a real dependency (the schema registry, say) that a test can take down and bring
 * back, to check that a service retries an outage instead of failing or dead-lettering.
 */
export async function tcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  const track = (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  };
  let server: Server | undefined;
  const listen = (port: number) =>
    new Promise<Server>((resolve, reject) => {
      const s = createServer((client) => {
        const upstream = connect(targetPort, targetHost);
        track(client);
        track(upstream);
        client.pipe(upstream).pipe(client);
        client.on('error', () => upstream.destroy());
        upstream.on('error', () => client.destroy());
      });
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve(s));
    });
  // Reserve a port, then release it so the proxy starts stopped.
  const probe = await listen(0);
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return {
    port,
    async start() {
      server ??= await listen(port);
    },
    async stop() {
      const s = server;
      server = undefined;
      for (const socket of sockets) socket.destroy();
      if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
    },
  };
}
