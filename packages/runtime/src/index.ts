// The root entry loads no express: consumer-only services import it. Express lives in `@ampflow/runtime/http`.
export * from './errors';
export * from './retry-policy';
export * from './every';
export * from './ops-routes';
export * from './http-server';
export * from './lifecycle';
export * from './ops-service';
