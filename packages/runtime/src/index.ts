export * from './errors';
export * from './retry-policy';
export * from './every';
export * from './ops-routes';
export * from './http-server';
export * from './lifecycle';
export * from './ops-service';
