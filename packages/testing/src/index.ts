export * from './env';
export * from './infrastructure';
export * from './kafka-helpers';
