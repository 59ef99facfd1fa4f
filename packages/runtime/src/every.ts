/** A periodic task started by {@link every}. */
export interface Periodic {
  /**
   * Prevents new runs and resolves once a run in progress has finished (its `signal` aborts first, so a long
   * run may end early). Calling it again returns the same promise.
   */
  stop(): Promise<void>;
}

export interface EveryOptions {
  /** Receives whatever a run throws; the loop goes on regardless. */
  onError: (error: unknown) => void;
}

/**
 * Runs `task` every `intervalMs` ms, the first time `intervalMs` after the call. Runs never overlap: the next
 * one is scheduled only once the previous one has finished, so a slow run delays the next rather than piling
 * up behind it (unlike `setInterval`). A run that throws is reported to `onError` and does not stop the loop.
 */
export function every(
  intervalMs: number,
  task: (signal: AbortSignal) => Promise<void> | void,
  options: EveryOptions,
): Periodic {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped: Promise<void> | undefined;

  const run = async () => {
    try {
      await task(controller.signal);
    } catch (error) {
      try {
        options.onError(error);
      } catch {
        // A failing reporter must not end the loop either; there is nowhere left to report to.
      }
    }
  };
  const schedule = () => {
    if (controller.signal.aborted) return;
    timer = setTimeout(() => {
      timer = undefined;
      running = run().finally(() => {
        running = undefined;
        schedule();
      });
    }, intervalMs);
  };
  schedule();

  return {
    stop() {
      stopped ??= (async () => {
        controller.abort();
        clearTimeout(timer);
        await running;
      })();
      return stopped;
    },
  };
}
