import { Router } from 'express';
import type { Kafka } from 'kafkajs';
import type { Logger, Registry } from '@ampflow/observability';
import { DependencyError } from '@ampflow/runtime';

/**
 * The operator-only data API (`/api/ops`: trace, sessions, pipeline), built by the console-data workspace
 * (`src/data`, its `createConsoleData`). This file is the one place the console imports it; until that module is
 * merged, the routes answer 503 `ops_data_unavailable` and the Trace, Sessions and Pipeline views say so.
 * At merge: `export { createConsoleData as createOpsData } from './data';` with these types from there.
 */
export interface OpsDataOptions {
  kafka: Kafka;
  schemaRegistryUrl: string;
  topicPrefix: string;
  metricsTargets: { service: string; url: string }[];
  notifier: { baseUrl: string; adminToken: string };
  logger: Logger;
  registry: Registry;
  traceRetention?: { maxEvents: number; maxAgeMs: number };
}

export interface OpsData {
  router: Router;
  start(): Promise<void>;
  stop(): Promise<void>;
  ready(): boolean;
}

export function createOpsData(_options: OpsDataOptions): OpsData {
  const router = Router();
  router.use((_req, _res, next) =>
    next(
      new DependencyError(
        'ops_data_unavailable',
        'the trace, sessions and pipeline data are not built into this console',
      ),
    ),
  );
  return { router, start: async () => {}, stop: async () => {}, ready: () => true };
}
