import type { LookupAddress } from 'node:dns';
import { Topics } from '@ampflow/contracts';
import { eventually, uniqueName } from '@ampflow/testing';
import { telemetry } from './fixtures';
import { managedNotifiers, type Json } from './harness';

/**
 * Issue 10, Tests: a private address is refused. The notifier here allow-lists nothing, so loopback is refused
 * both as a literal (at creation, 400) and behind a host name (at connect time, no connection made). Host names
 * resolve through an injected resolver that only knows `sink.test`, so nothing ever leaves 127.0.0.1.
 */
jest.setTimeout(60_000);

const { notifier, sink } = managedNotifiers();

const resolved: string[] = [];
async function loopbackResolver(hostname: string): Promise<LookupAddress[]> {
  resolved.push(hostname);
  if (hostname === 'sink.test') return [{ address: '127.0.0.1', family: 4 }];
  const error: NodeJS.ErrnoException = new Error(`no test address for ${hostname}`);
  error.code = 'ENOTFOUND';
  throw error;
}

describe('notifier SSRF guard', () => {
  it('refuses loopback: a literal address at creation, a host name resolving to it at connect time', async () => {
    const n = await notifier({ allowedNetworks: [], retryScheduleMs: [0], resolver: loopbackResolver });
    const s = await sink();
    const port = new URL(s.url).port;

    const literal = await n.admin('POST', '/v1/endpoints', { url: `http://127.0.0.1:${port}/` });
    expect(literal.status).toBe(400);
    expect(literal.body.error.code).toBe('destination_refused');
    expect((await n.admin('GET', '/v1/endpoints')).body.data).toEqual([]);

    // A host name cannot be judged at creation; it is refused when the delivery resolves it.
    const named = await n.admin('POST', '/v1/endpoints', {
      url: `http://sink.test:${port}/hooks`,
      eventTypes: ['vehicle.telemetry'],
    });
    expect(named.status).toBe(201);
    const endpointId = named.body.id as string;
    await n.produce(Topics.vehicleTelemetry, [telemetry(`telematica:${uniqueName('v')}`, 1)]);

    let attempts: Json[] = [];
    await eventually(async () => {
      attempts = (await n.admin('GET', `/v1/endpoints/${endpointId}/attempts`)).body.data;
      return attempts.length >= 1;
    }, 'the refused attempt in the log');
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({ status: 'failed', httpStatus: null, next: 'dead_letter' });
    expect(attempts[0].error).toMatch(/network error: .*(REFUSED|refused)/);
    expect(attempts[0].error).not.toMatch(/ECONNREFUSED/);
    await eventually(async () => {
      const letters = await n.admin('GET', `/v1/dead-letters?endpointId=${endpointId}`);
      return letters.body.data.length === 1;
    }, 'the refused message kept as a dead letter');
    expect(resolved).toContain('sink.test');
    expect(s.connections).toBe(0);
    expect(s.received).toEqual([]);
  });
});
