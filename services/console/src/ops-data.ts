/**
 * The operator-only data API (`/api/ops`: trace, sessions, pipeline), built in `src/data` (`createConsoleData`,
 * see docs/console-data.md). This file is the one place the console's server imports it.
 */
export {
  createConsoleData as createOpsData,
  type ConsoleData as OpsData,
  type ConsoleDataOptions as OpsDataOptions,
} from './data';
