export * from './topics';
export * from './topic-configs';
export * from './headers';
export * from './canonical';
export * from './providers/smartcar-schemas';
export * from './providers/telematica-schemas';
export * from './providers/payloads';
export * from './customer-events';
