import Redis from 'ioredis';
import Pipeline from 'ioredis/built/Pipeline';
import { Topics } from '@ampflow/contracts';
import { eventually, uniqueName } from '@ampflow/testing';
import { session } from './fixtures';
import { registerSink, managedNotifiers } from './harness';

const { notifier, sink } = managedNotifiers();

/**
 * Redis round trips of a delivery at a low rate (issue 16), counted as the e2e bench counts them: a command sent
 * alone is one, a pipeline is one. One source record at a time, each delivered before the next is produced.
 */
describe('Redis round trips per delivery', () => {
  it('a source record read, delivered and marked with its history costs three round trips', async () => {
    const n = await notifier();
    const s = await sink();
    await registerSink(n, s, { eventTypes: ['charging_session.updated'] });
    const vehicle = `smartcar:${uniqueName('v')}`;
    // The first record of a vehicle also writes what it learned; the count starts after it.
    await n.produce(Topics.chargingSessions, [session(vehicle, 'UPDATED', { version: 2 })]);
    await eventually(() => s.received.length >= 1, 'the first webhook');

    let roundTrips = 0;
    const sendCommand = Redis.prototype.sendCommand;
    const exec = Pipeline.prototype.exec;
    const commands = jest.spyOn(Redis.prototype, 'sendCommand').mockImplementation(function (
      this: Redis,
      ...args: Parameters<Redis['sendCommand']>
    ) {
      // Commands of a pipeline pass its stream: counted once, by `exec`.
      if (args[1] === undefined) roundTrips += 1;
      return sendCommand.apply(this, args);
    });
    const pipelines = jest.spyOn(Pipeline.prototype, 'exec').mockImplementation(function (
      this: Pipeline,
      ...args: Parameters<Pipeline['exec']>
    ) {
      roundTrips += 1;
      return exec.apply(this, args);
    });
    const deliveries = 8;
    try {
      for (let i = 0; i < deliveries; i += 1) {
        await n.produce(Topics.chargingSessions, [session(vehicle, 'UPDATED', { version: 3 + i })]);
        await eventually(() => s.received.length >= 2 + i, `webhook ${2 + i}`);
        // The done mark (and the history with it) goes out within a round trip of the answer.
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      commands.mockRestore();
      pipelines.mockRestore();
    }
    // Per delivery: the fan-out's one MGET (directory, done marks), its mark once the delivery is in the deliveries
    // topic (issue 17), and the sent mark's pipeline carrying the attempt and the message log; on a slow machine now
    // and then the history's own timer. The deliveries reader checks no mark for a record written after it got the
    // partition (nobody can have sent it before). Before issue 16: four; between issues 16 and 17: two.
    expect(roundTrips / deliveries).toBeLessThanOrEqual(3.5);
    expect(s.received).toHaveLength(1 + deliveries);
  });
});
