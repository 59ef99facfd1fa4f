import { applyPlugReading, type PlugState } from './plug-state';

const state = (isPluggedIn: boolean, occurredAt: number, eventId = `e${occurredAt}`): PlugState => ({
  isPluggedIn,
  occurredAt,
  eventId,
});
const reading = (isPluggedIn: boolean | null, occurredAt: number, eventId = `e${occurredAt}`) => ({
  isPluggedIn,
  occurredAt,
  eventId,
});

describe('applyPlugReading', () => {
  it.each([
    ['first reading sets a baseline, no event', null, reading(true, 10), null, 'baseline', state(true, 10)],
    [
      'unknown reading changes nothing',
      state(false, 10),
      reading(null, 20),
      null,
      'no_reading',
      state(false, 10),
    ],
    [
      'plug-in fires plugged_in',
      state(false, 10),
      reading(true, 20),
      'vehicle.plugged_in',
      null,
      state(true, 20),
    ],
    [
      'unplug fires unplugged',
      state(true, 10),
      reading(false, 20),
      'vehicle.unplugged',
      null,
      state(false, 20),
    ],
    ['same value moves time forward', state(true, 10), reading(true, 20), null, 'unchanged', state(true, 20)],
    ['a late reading does not flip', state(true, 20), reading(false, 10), null, 'late', state(true, 20)],
    [
      'a tie keeps the first applied',
      state(true, 20, 'a'),
      reading(false, 20, 'b'),
      null,
      'late',
      state(true, 20, 'a'),
    ],
    [
      'a duplicate changes nothing',
      state(true, 20, 'a'),
      reading(false, 30, 'a'),
      null,
      'duplicate',
      state(true, 20, 'a'),
    ],
  ] as const)('%s', (_case, previous, input, event, skipped, expected) => {
    const decision = applyPlugReading(previous, input);
    expect(decision.event).toBe(event);
    expect(decision.skipped).toBe(skipped);
    expect(decision.state).toEqual(expected);
  });

  it('orders by occurredAt, so readings in any arrival order end in the newest state with one flip each', () => {
    const readings = [reading(false, 1), reading(true, 2), reading(false, 3)];
    const inOrder = readings.reduce<{ s: PlugState | null; events: string[] }>(
      (acc, r) => {
        const d = applyPlugReading(acc.s, r);
        return { s: d.state, events: d.event ? [...acc.events, d.event] : acc.events };
      },
      { s: null, events: [] },
    );
    expect(inOrder.events).toEqual(['vehicle.plugged_in', 'vehicle.unplugged']);
    // Arriving newest first: the older two are late and fire nothing.
    let s: PlugState | null = null;
    const events: string[] = [];
    for (const r of [...readings].reverse()) {
      const d = applyPlugReading(s, r);
      s = d.state;
      if (d.event) events.push(d.event);
    }
    expect(events).toEqual([]);
    expect(s).toEqual(state(false, 3));
  });
});
