import { Socket, connect } from 'node:net';
import { Kafka, logLevel, type ISocketFactory } from 'kafkajs';
import { testEndpoints } from './env';
import { uniqueName } from './kafka-helpers';

export interface PartitionableSocketFactory {
  /** Give this to `new Kafka({ socketFactory })`. */
  socketFactory: ISocketFactory;
  /** Cuts every open connection and refuses new ones, as if the broker became unreachable. */
  cut(): void;
  /** Lets connections through again. */
  heal(): void;
}

/**
 * A kafkajs socket factory whose connections to the real broker can be cut and healed, so a test can
 * put a network partition between a service and Kafka without stopping the broker other tests share.
 */
export function partitionableSocketFactory(): PartitionableSocketFactory {
  const open = new Set<Socket>();
  let partitioned = false;
  const socketFactory: ISocketFactory = ({ host, port, onConnect }) => {
    if (partitioned) {
      const socket = new Socket();
      process.nextTick(() =>
        socket.destroy(
          Object.assign(new Error('connect ECONNREFUSED (partitioned)'), { code: 'ECONNREFUSED' }),
        ),
      );
      return socket;
    }
    const socket = connect({ host, port }, onConnect);
    open.add(socket);
    socket.once('close', () => open.delete(socket));
    return socket;
  };
  return {
    socketFactory,
    cut() {
      partitioned = true;
      for (const socket of open)
        socket.destroy(Object.assign(new Error('connection reset (partitioned)'), { code: 'ECONNRESET' }));
    },
    heal() {
      partitioned = false;
    },
  };
}

/**
 * A kafkajs client for the infrastructure under test whose connections `partition` can cut, with short
 * timeouts so an outage shows within a second or two.
 */
export function partitionedKafka(
  partition: PartitionableSocketFactory,
  clientId = uniqueName('partitioned'),
): Kafka {
  return new Kafka({
    clientId,
    brokers: testEndpoints().kafkaBrokers,
    logLevel: logLevel.NOTHING,
    socketFactory: partition.socketFactory,
    connectionTimeout: 1_000,
    requestTimeout: 2_000,
    retry: { initialRetryTime: 100, maxRetryTime: 500, retries: 5 },
  });
}
