/**
 * `@ampflow/runtime/http`: the express-based pieces, apart from the root entry so that services without an
 * HTTP API of their own never load express.
 */
export * from './http-app';
