export * from './env';
export * from './infrastructure';
export * from './kafka-helpers';
export * from './fixtures';
export * from './network-partition';
export * from './metrics-text';
export * from './tcp-proxy';
export * from './redis-process';
