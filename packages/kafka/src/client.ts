import { Kafka, logLevel, type KafkaConfig, type LogEntry } from 'kafkajs';
import type { Logger } from '@ampflow/observability';
import { fixKafkajsRequestQueueTimer } from './kafkajs-request-queue';

const levelName: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

export interface KafkaClientOptions {
  brokers: string[];
  clientId: string;
  logger: Logger;
  /** Time to establish a connection to a broker. */
  connectionTimeoutMs?: number;
  /** Time a broker has to answer a request. */
  requestTimeoutMs?: number;
  /** kafkajs's retry policy for requests and reconnects. */
  retry?: KafkaConfig['retry'];
}

/** The one way services build a kafkajs client: logs go through pino, kafkajs noise stays at WARN. */
export function createKafka(options: KafkaClientOptions): Kafka {
  fixKafkajsRequestQueueTimer();
  const log = options.logger.child({ component: 'kafkajs' });
  return new Kafka({
    clientId: options.clientId,
    brokers: options.brokers,
    connectionTimeout: options.connectionTimeoutMs ?? 3_000,
    requestTimeout: options.requestTimeoutMs ?? 10_000,
    retry: options.retry ?? { initialRetryTime: 200, maxRetryTime: 5_000, retries: 8 },
    logLevel: logLevel.WARN,
    logCreator:
      () =>
      ({ level, log: entry }: LogEntry) => {
        const { message, ...rest } = entry;
        log[levelName[level] ?? 'info'](rest, message);
      },
  });
}
