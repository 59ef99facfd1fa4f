import type { ChargingSession } from '@ampflow/contracts';
import { assess, progressLine, webhookVehicle, type Observations, type VerifiedWebhook } from './outcome';
import { buildScenario, loadTemplates, type Scenario } from './scenario';

const scenario: Scenario = buildScenario(loadTemplates(), {
  runId: 'outcome',
  now: Date.parse('2026-05-04T12:00:00Z'),
});

/** What a working platform shows for the scenario. */
function perfect(): Observations {
  const { expected } = scenario;
  return {
    answers: scenario.deliveries.map((d) => ({ step: d.step, httpStatus: 200, status: d.outcome })),
    records: expected.records.map((r) => ({ topic: r.topic, key: r.key, eventId: r.eventId, value: {} })),
    sessions: expected.sessions.map(
      (s) =>
        ({
          vehicleId: s.vehicleId,
          version: s.version,
          change: s.change,
          endReason: s.endReason,
          socStartPercent: s.socStartPercent,
          socEndPercent: s.socEndPercent,
        }) as ChargingSession,
    ),
    webhooks: expected.webhooks.flatMap((w) =>
      Array.from({ length: w.count }, (_, i): VerifiedWebhook => ({
        id: `msg_${w.type}_${w.vehicleId}_${i}`,
        type: w.type,
        timestamp: '2026-05-04T11:00:00.000Z',
        data: w.type.startsWith('device.')
          ? { devices: [{ vehicleId: w.vehicleId }] }
          : { vehicleId: w.vehicleId },
      })),
    ),
    unverified: 0,
  };
}

describe('assess', () => {
  it('is complete without problems when everything expected arrived once', () => {
    const progress = assess(scenario, perfect());
    expect(progress).toMatchObject({
      complete: true,
      problems: [],
      records: { seen: 18, expected: 18 },
      sessions: { seen: 8, expected: 8 },
      webhooks: { seen: 30, expected: 30 },
    });
  });

  it('counts what arrived so far and names what is missing', () => {
    const seen = perfect();
    const progress = assess(scenario, {
      ...seen,
      records: seen.records.slice(1),
      webhooks: seen.webhooks.slice(2),
    });
    expect(progress.complete).toBe(false);
    expect(progress.records.seen).toBe(17);
    expect(progress.webhooks.seen).toBe(28);
    expect(progress.problems[0]).toMatch(/^missing record telematica:msg_/);
  });

  it('reports a record published twice, as the duplicate delivery must not be', () => {
    const seen = perfect();
    const progress = assess(scenario, { ...seen, records: [...seen.records, seen.records[8]!] });
    expect(progress.complete).toBe(true);
    expect(progress.problems).toEqual([expect.stringMatching(/was published 2 times$/)]);
  });

  it('reports an ingress answer other than the expected one', () => {
    const seen = perfect();
    const answers = seen.answers.map((a) =>
      a.step === 18
        ? { ...a, status: 'accepted' }
        : a.step === 2
          ? { ...a, httpStatus: 401, status: 'invalid_signature' }
          : a,
    );
    expect(assess(scenario, { ...seen, answers }).problems).toEqual([
      expect.stringMatching(/^step 2 .*answered 401 invalid_signature, expected 200 accepted$/),
      expect.stringMatching(/^step 18 .*answered 200 accepted, expected 200 duplicate$/),
    ]);
  });

  it('reports a session change of the wrong kind and one that should not exist', () => {
    const seen = perfect();
    const sessions = seen.sessions.map((s) =>
      s.version === 4 ? { ...s, endReason: 'UNPLUGGED' as const } : s,
    );
    const extra = { ...sessions[0]!, version: 5, change: 'STARTED' as const };
    const { problems } = assess(scenario, { ...seen, sessions: [...sessions, extra] });
    expect(problems).toHaveLength(3);
    expect(problems[2]).toMatch(/^unexpected session change .* version 5/);
  });

  it('reports webhooks that did not verify', () => {
    expect(assess(scenario, { ...perfect(), unverified: 2 }).problems).toEqual([
      "2 request(s) to the sink did not verify with the endpoint's secret",
    ]);
  });
});

describe('webhookVehicle', () => {
  it('is the vehicle of the data, or of the first device of a device link', () => {
    expect(webhookVehicle({ data: { vehicleId: 'v1' } })).toBe('v1');
    expect(webhookVehicle({ data: { devices: [{ vehicleId: 'v2' }] } })).toBe('v2');
    expect(webhookVehicle({ data: {} })).toBeNull();
  });
});

describe('progressLine', () => {
  it('shows the three counts and the seconds waited', () => {
    const progress = assess(scenario, { ...perfect(), webhooks: [] });
    expect(progressLine(progress, 12_400)).toBe(
      'records 18/18 · sessions 8/8 · webhooks verified 0/30 · 12 s',
    );
  });
});
