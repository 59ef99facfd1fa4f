import { startSink, type Sink } from './harness';

/** A loopback receiver that measures what an endpoint sees: when each request came, and how many at once. */
export interface Measured {
  sink: Sink;
  /** Arrival times of every request, ms. */
  arrivals: number[];
  inFlight: number;
  maxInFlight: number;
}

/** A sink that counts requests in flight and answers after `delayMs` with `status`. */
export async function measuredSink(delayMs: number, status = 204): Promise<Measured> {
  const measured: Measured = {
    sink: undefined as unknown as Sink,
    arrivals: [],
    inFlight: 0,
    maxInFlight: 0,
  };
  measured.sink = await startSink(async (_hook, _req, res) => {
    measured.arrivals.push(Date.now());
    measured.inFlight += 1;
    measured.maxInFlight = Math.max(measured.maxInFlight, measured.inFlight);
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    measured.inFlight -= 1;
    res.writeHead(status).end();
  });
  return measured;
}

/** The most arrivals in any window [t, t + 1000 ms]. */
export function maxInOneSecond(arrivals: number[]): number {
  const sorted = [...arrivals].sort((a, b) => a - b);
  let max = 0;
  let from = 0;
  for (let to = 0; to < sorted.length; to += 1) {
    while (sorted[to]! - sorted[from]! > 1_000) from += 1;
    max = Math.max(max, to - from + 1);
  }
  return max;
}
