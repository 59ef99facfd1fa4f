import { CompressionTypes, Partitioners, type Kafka, type Message, type Producer, type RecordMetadata } from 'kafkajs';
import { DependencyError } from '@ampflow/runtime';

export interface ReliableProducer {
  /** Connects once; kafkajs reconnects by itself afterwards. */
  connect(): Promise<void>;
  /**
   * Sends with `acks=-1` and resolves only once every in-sync replica has the records.
   * Rejects with a retriable {@link DependencyError} when the broker does not acknowledge within `timeoutMs`.
   */
  send(topic: string, messages: Message[], timeoutMs?: number): Promise<RecordMetadata[]>;
  /** True while the producer holds a broker connection. */
  isConnected(): boolean;
  disconnect(): Promise<void>;
  readonly raw: Producer;
}

export interface ReliableProducerOptions {
  /** Default bound on one send, acknowledgement included. */
  sendTimeoutMs?: number;
  compression?: CompressionTypes;
}

/** An idempotent producer (no duplicates from its own retries) with `acks=-1` and bounded sends. */
export function createReliableProducer(kafka: Kafka, options: ReliableProducerOptions = {}): ReliableProducer {
  const sendTimeoutMs = options.sendTimeoutMs ?? 5_000;
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 5,
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1_000 },
  });
  let connected = false;
  producer.on(producer.events.CONNECT, () => {
    connected = true;
  });
  producer.on(producer.events.DISCONNECT, () => {
    connected = false;
  });

  return {
    raw: producer,
    connect: () => producer.connect(),
    isConnected: () => connected,
    disconnect: () => producer.disconnect(),
    async send(topic, messages, timeoutMs = sendTimeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new DependencyError('kafka_timeout', `Kafka did not acknowledge within ${timeoutMs} ms`)),
          timeoutMs,
        );
      });
      try {
        return await Promise.race([
          producer.send({ topic, messages, acks: -1, timeout: timeoutMs, compression: options.compression }),
          timeout,
        ]);
      } catch (err) {
        if (err instanceof DependencyError) throw err;
        throw new DependencyError('kafka_unavailable', 'Kafka did not accept the records', { cause: err });
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
