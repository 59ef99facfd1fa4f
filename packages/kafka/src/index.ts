export * from './client';
export * from './producer';
export { withTimeout } from '@ampflow/runtime';
export * from './topics-admin';
export * from './consumer-runner';
export * from './broker-probe';
export * from './schema-registration';
export * from './message-limits';
export * from './work-health';
