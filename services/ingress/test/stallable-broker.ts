import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Kafka, logLevel } from 'kafkajs';
import { testEndpoints, uniqueName } from '@ampflow/testing';

/**
 * The shared test broker behind a loopback proxy whose traffic a test can hold, as a broker stopped with
 * SIGSTOP holds it: connections stay open and new ones are accepted, bytes sent are taken in, and nothing is
 * answered until `resume` lets everything held through, in order. Only this test's client goes through it;
 * the broker itself (shared with other tests) is never paused.
 */
export interface StallableBroker {
  /** A kafkajs client whose every broker connection goes through the proxy. */
  kafka: Kafka;
  stall(): void;
  resume(): void;
  close(): Promise<void>;
}

export async function stallableBroker(
  kafkaOptions: { requestTimeoutMs: number } = { requestTimeoutMs: 5_000 },
): Promise<StallableBroker> {
  const brokers = testEndpoints().kafkaBrokers;
  if (brokers.length !== 1) throw new Error(`stallableBroker proxies one broker, got ${brokers.join(',')}`);
  const [host, port] = splitHostPort(brokers[0]!);
  const sockets = new Set<Socket>();
  const held: Array<{ to: Socket; chunk: Buffer }> = [];
  let stalled = false;

  const forward = (from: Socket, to: Socket) => {
    from.on('data', (chunk: Buffer) => {
      if (stalled) held.push({ to, chunk });
      else to.write(chunk);
    });
    from.on('close', () => to.destroy());
    from.on('error', () => to.destroy());
  };
  const server: Server = createServer((client) => {
    const upstream = connect(port, host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    }
    forward(client, upstream);
    forward(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const proxyPort = (server.address() as AddressInfo).port;

  const kafka = new Kafka({
    clientId: uniqueName('stallable'),
    brokers,
    logLevel: logLevel.NOTHING,
    // Whatever broker address the metadata advertises, the connection goes through the proxy.
    socketFactory: ({ onConnect }) => connect({ host: '127.0.0.1', port: proxyPort }, onConnect),
    connectionTimeout: 3_000,
    requestTimeout: kafkaOptions.requestTimeoutMs,
  });
  return {
    kafka,
    stall: () => {
      stalled = true;
    },
    resume: () => {
      stalled = false;
      for (const { to, chunk } of held.splice(0)) if (!to.destroyed) to.write(chunk);
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function splitHostPort(address: string): [string, number] {
  const at = address.lastIndexOf(':');
  return [address.slice(0, at), Number(address.slice(at + 1))];
}
