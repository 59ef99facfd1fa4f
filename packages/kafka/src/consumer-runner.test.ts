import { EventEmitter } from 'node:events';
import type { Consumer, ConsumerConfig, Kafka, Message } from 'kafkajs';
import pino from 'pino';
import { DependencyError, ValidationError } from '@ampflow/runtime';
import {
  DEFAULT_FETCH_MAX_BYTES,
  DEFAULT_FETCH_MAX_BYTES_PER_PARTITION,
  groupConsumer,
  processChunk,
  type ChunkDeps,
  type ConsumedRecord,
  type ConsumerHandler,
  type OutputRecord,
  watchMembership,
} from './consumer-runner';

const logger = pino({ level: 'silent' });
const FAILED_AT = new Date('2025-08-05T10:00:00.000Z');

function aRecord(offset: number, value = `v-${offset}`): ConsumedRecord {
  return {
    topic: 'raw',
    partition: 2,
    message: {
      key: Buffer.from('k'),
      value: Buffer.from(value),
      headers: { 'event-id': `e-${offset}` },
      offset: String(offset),
      timestamp: '0',
      attributes: 0,
    },
  };
}

const out = (topic: string, value: string): OutputRecord => ({ topic, message: { key: 'k', value } });

const tooLarge = (topic: string) =>
  new ValidationError('record_too_large', `a record exceeds what ${topic} accepts`, { httpStatus: 413 });

/**
 * A producer that records every send, in order, and can be told to fail: with `fail` every send, with
 * `refuse` (as the real producer refuses a record over its topic's limit) every send holding a matching value.
 */
function aFakeProducer(options: { fail?: Error; refuse?: (value: string) => boolean } = {}) {
  const sends: Array<{ topic: string; values: string[] }> = [];
  const events: string[] = [];
  const deps: ChunkDeps = {
    logger,
    now: () => FAILED_AT,
    producer: {
      send: async (topic: string, messages: Message[]) => {
        if (options.fail) throw options.fail;
        if (options.refuse && messages.some((m) => options.refuse!(String(m.value)))) throw tooLarge(topic);
        sends.push({ topic, values: messages.map((m) => String(m.value)) });
        events.push(`send ${topic}`);
      },
    },
  };
  return { deps, sends, events, dlq: () => sends.find((s) => s.topic === 'raw.dlq') };
}

describe('processChunk with a per-record handler', () => {
  it('sends every output grouped per topic, in record order, and returns each outcome', async () => {
    const fake = aFakeProducer();
    const handler: ConsumerHandler = {
      perRecord: async (r) => ({
        outputs: [out(Number(r.message.offset) % 2 ? 'odd' : 'even', String(r.message.value))],
      }),
    };
    const outcomes = await processChunk([aRecord(0), aRecord(1), aRecord(2), aRecord(3)], handler, fake.deps);

    expect(fake.sends).toEqual([
      { topic: 'even', values: ['v-0', 'v-2'] },
      { topic: 'odd', values: ['v-1', 'v-3'] },
    ]);
    expect(outcomes).toEqual([
      { outputs: [out('even', 'v-0')] },
      { outputs: [out('odd', 'v-1')] },
      { outputs: [out('even', 'v-2')] },
      { outputs: [out('odd', 'v-3')] },
    ]);
  });

  it('sends nothing when no record produced anything', async () => {
    const fake = aFakeProducer();
    const outcomes = await processChunk(
      [aRecord(0)],
      { perRecord: async () => ({ outputs: [] }) },
      fake.deps,
    );
    expect(fake.sends).toEqual([]);
    expect(outcomes).toEqual([{ outputs: [] }]);
  });

  it('dead-letters a record whose outcome says so, with the reason and its position in headers', async () => {
    const fake = aFakeProducer();
    const error = new ValidationError('bad_json', 'the record value is not JSON');
    const handler: ConsumerHandler = {
      perRecord: async (r) =>
        r.message.offset === '1' ? { deadLetter: error } : { outputs: [out('canon', 'c')] },
    };
    const outcomes = await processChunk([aRecord(0), aRecord(1), aRecord(2)], handler, fake.deps);

    expect(outcomes[1]).toEqual({ deadLetter: error });
    expect(fake.sends).toContainEqual({ topic: 'canon', values: ['c', 'c'] });
    expect(fake.dlq()).toEqual({ topic: 'raw.dlq', values: ['v-1'] });
  });

  it('dead-letters a record whose handler threw a permanent error, rather than retrying it forever', async () => {
    const fake = aFakeProducer();
    const sent: Message[] = [];
    fake.deps.producer.send = async (_topic, messages) => {
      sent.push(...messages);
    };
    const error = new ValidationError('missing_headers', 'no provider');
    const outcomes = await processChunk(
      [aRecord(7)],
      {
        perRecord: async () => {
          throw error;
        },
      },
      fake.deps,
    );

    expect(outcomes).toEqual([{ deadLetter: error }]);
    expect(sent).toEqual([
      {
        key: Buffer.from('k'),
        value: Buffer.from('v-7'),
        headers: {
          'event-id': 'e-7',
          'error-code': 'missing_headers',
          'error-message': 'no provider',
          'failed-at': FAILED_AT.toISOString(),
          'source-topic': 'raw',
          'source-partition': '2',
          'source-offset': '7',
        },
      },
    ]);
  });

  it('throws, sending nothing, when a handler throws a retriable or unknown error (the chunk is retried)', async () => {
    for (const error of [new DependencyError('registry_unavailable', 'away'), new Error('boom')]) {
      const fake = aFakeProducer();
      const handler: ConsumerHandler = {
        perRecord: async (r) => {
          if (r.message.offset === '1') throw error;
          return { outputs: [out('canon', 'c')] };
        },
      };
      await expect(processChunk([aRecord(0), aRecord(1)], handler, fake.deps)).rejects.toBe(error);
      expect(fake.sends).toEqual([]);
    }
  });

  it('dead-letters a record whose output the producer refuses for good (too large), and sends the others', async () => {
    const fake = aFakeProducer({ refuse: (value) => value === 'huge' });
    const handler: ConsumerHandler = {
      perRecord: async (r) => ({
        outputs: [out('canon', r.message.offset === '1' ? 'huge' : `c-${r.message.offset}`)],
      }),
    };
    const outcomes = await processChunk([aRecord(0), aRecord(1), aRecord(2)], handler, fake.deps);

    expect(outcomes).toEqual([
      { outputs: [out('canon', 'c-0')] },
      { deadLetter: expect.objectContaining({ code: 'record_too_large' }) },
      { outputs: [out('canon', 'c-2')] },
    ]);
    const canon = fake.sends.filter((s) => s.topic === 'canon').flatMap((s) => s.values);
    expect(new Set(canon)).toEqual(new Set(['c-0', 'c-2']));
    expect(fake.dlq()).toEqual({ topic: 'raw.dlq', values: ['v-1'] });
  });

  it('throws when the outputs are not acknowledged', async () => {
    const failure = new DependencyError('kafka_unavailable', 'no ack');
    const fake = aFakeProducer({ fail: failure });
    await expect(
      processChunk([aRecord(0)], { perRecord: async () => ({ outputs: [out('canon', 'c')] }) }, fake.deps),
    ).rejects.toBe(failure);
  });
});

describe('processChunk with a per-chunk handler', () => {
  it('sends the outputs and dead-letters the records named by index; the others are ok without outputs', async () => {
    const fake = aFakeProducer();
    const error = new ValidationError('bad_avro', 'not Confluent wire format');
    const outcomes = await processChunk(
      [aRecord(0), aRecord(1), aRecord(2)],
      {
        perChunk: async () => ({
          outputs: [out('sessions', 's1'), out('changelog', 'c1'), out('sessions', 's2')],
          deadLetters: [{ index: 1, error }],
        }),
      },
      fake.deps,
    );

    expect(outcomes).toEqual([{ outputs: [] }, { deadLetter: error }, { outputs: [] }]);
    expect(fake.sends).toEqual([
      { topic: 'sessions', values: ['s1', 's2'] },
      { topic: 'changelog', values: ['c1'] },
      { topic: 'raw.dlq', values: ['v-1'] },
    ]);
  });

  it('runs afterSend only once everything is acknowledged, and before the outcomes are returned', async () => {
    const fake = aFakeProducer();
    const done = processChunk(
      [aRecord(0)],
      {
        perChunk: async () => ({
          outputs: [out('sessions', 's1')],
          afterSend: async () => {
            fake.events.push('afterSend');
          },
        }),
      },
      fake.deps,
    ).then(() => fake.events.push('done'));
    await done;
    expect(fake.events).toEqual(['send sessions', 'afterSend', 'done']);
  });

  it('does not run afterSend when the send fails, and throws so the chunk is retried', async () => {
    const failure = new DependencyError('kafka_unavailable', 'no ack');
    const fake = aFakeProducer({ fail: failure });
    const afterSend = jest.fn(async () => undefined);
    await expect(
      processChunk(
        [aRecord(0)],
        { perChunk: async () => ({ outputs: [out('s', 'x')], afterSend }) },
        fake.deps,
      ),
    ).rejects.toBe(failure);
    expect(afterSend).not.toHaveBeenCalled();
  });

  it('throws when afterSend fails (e.g. a state conflict), so the chunk is retried', async () => {
    const conflict = new DependencyError('state_conflict', 'changed concurrently');
    const fake = aFakeProducer();
    await expect(
      processChunk(
        [aRecord(0)],
        {
          perChunk: async () => ({
            outputs: [],
            afterSend: async () => {
              throw conflict;
            },
          }),
        },
        fake.deps,
      ),
    ).rejects.toBe(conflict);
  });

  it('finds the record whose outputs the producer refuses for good by handling the chunk again in halves', async () => {
    const fake = aFakeProducer({ refuse: (value) => value.startsWith('huge') });
    const handled: string[][] = [];
    const applied: string[] = [];
    const handler: ConsumerHandler = {
      perChunk: async (records) => {
        const offsets = records.map((r) => r.message.offset);
        handled.push(offsets);
        return {
          outputs: offsets.map((o) => out('sessions', o === '2' ? `huge-${o}` : `s-${o}`)),
          afterSend: async () => void applied.push(...offsets),
        };
      },
    };
    const outcomes = await processChunk(
      [0, 1, 2, 3, 4].map((o) => aRecord(o)),
      handler,
      fake.deps,
    );

    expect(outcomes).toEqual([
      { outputs: [] },
      { outputs: [] },
      { deadLetter: expect.objectContaining({ code: 'record_too_large' }) },
      { outputs: [] },
      { outputs: [] },
    ]);
    // Only the halves holding the culprit are handled again; a record whose outputs were refused is not applied.
    expect(handled).toEqual([['0', '1', '2', '3', '4'], ['0', '1', '2'], ['0', '1'], ['2'], ['3', '4']]);
    expect(applied).toEqual(['0', '1', '3', '4']);
    expect(fake.dlq()).toEqual({ topic: 'raw.dlq', values: ['v-2'] });
  });

  it('dead-letters a lone record whose afterSend is refused for good (e.g. its state is too large)', async () => {
    const fake = aFakeProducer();
    const refusal = tooLarge('changelog');
    const outcomes = await processChunk(
      [aRecord(0)],
      {
        perChunk: async () => ({
          outputs: [],
          afterSend: async () => {
            throw refusal;
          },
        }),
      },
      fake.deps,
    );
    expect(outcomes).toEqual([{ deadLetter: refusal }]);
    expect(fake.dlq()?.values).toEqual(['v-0']);
  });

  it('refuses a dead-letter index outside the chunk', async () => {
    const fake = aFakeProducer();
    await expect(
      processChunk(
        [aRecord(0)],
        { perChunk: async () => ({ outputs: [], deadLetters: [{ index: 3, error: new Error('x') }] }) },
        fake.deps,
      ),
    ).rejects.toThrow('index 3 of 1');
    expect(fake.sends).toEqual([]);
  });
});

describe('watchMembership', () => {
  /** The part of a kafkajs consumer it listens to: GROUP_JOIN, STOP and CRASH instrumentation events. */
  function aFakeConsumer() {
    const emitter = new EventEmitter();
    const events = { GROUP_JOIN: 'consumer.group_join', STOP: 'consumer.stop', CRASH: 'consumer.crash' };
    const consumer = {
      events,
      on: (event: string, listener: (e: unknown) => void) => emitter.on(event, listener),
    } as unknown as Consumer;
    const emit = (event: keyof typeof events, payload: unknown) => emitter.emit(events[event], { payload });
    return { consumer, emit };
  }

  function watch(options: { stopping?: boolean } = {}) {
    const fake = aFakeConsumer();
    const fatal: unknown[] = [];
    const membership = watchMembership(fake.consumer, {
      logger,
      onFatal: (error) => fatal.push(error),
      isStopping: () => options.stopping ?? false,
    });
    fake.emit('GROUP_JOIN', { memberAssignment: { raw: [0, 1] } });
    return { ...fake, fatal, membership };
  }

  it('turns a crash kafkajs will not restart from into onFatal, and no longer counts as running', () => {
    const { emit, fatal, membership } = watch();
    expect(membership.running()).toBe(true);
    const error = new Error('The coordinator is not aware of this member');
    emit('CRASH', { error, restart: false });
    expect(fatal).toEqual([error]);
    expect(membership.running()).toBe(false);
  });

  it('leaves a crash kafkajs restarts from to kafkajs, and is running again once it rejoins', () => {
    const { emit, fatal, membership } = watch();
    emit('CRASH', { error: new Error('Connection timeout'), restart: true });
    expect(membership.running()).toBe(false);
    emit('GROUP_JOIN', { memberAssignment: { raw: [0] } });
    expect(membership.running()).toBe(true);
    expect(fatal).toEqual([]);
  });

  it('does not report a crash while the service is stopping', () => {
    const { emit, fatal } = watch({ stopping: true });
    emit('CRASH', { error: new Error('disconnected'), restart: false });
    expect(fatal).toEqual([]);
  });
});

describe('groupConsumer', () => {
  /** The kafkajs consumer config groupConsumer asks for. */
  function configOf(options: Parameters<typeof groupConsumer>[1]): ConsumerConfig {
    let config: ConsumerConfig | undefined;
    const kafka = {
      consumer: (c: ConsumerConfig) => {
        config = c;
        return {} as Consumer;
      },
    } as unknown as Kafka;
    groupConsumer(kafka, options);
    return config!;
  }

  it('bounds fetch responses below the kafkajs defaults (10 MiB per request) unless told otherwise', () => {
    const config = configOf({ groupId: 'g', maxWaitTimeInMs: 1_000 });
    expect(config.maxBytes).toBe(DEFAULT_FETCH_MAX_BYTES);
    expect(config.maxBytesPerPartition).toBe(DEFAULT_FETCH_MAX_BYTES_PER_PARTITION);
    expect(DEFAULT_FETCH_MAX_BYTES).toBeLessThan(10 * 1024 * 1024);
  });

  it('passes chosen fetch sizes through', () => {
    const config = configOf({
      groupId: 'g',
      maxWaitTimeInMs: 1_000,
      maxBytes: 65_536,
      maxBytesPerPartition: 4_096,
    });
    expect(config).toMatchObject({ groupId: 'g', maxBytes: 65_536, maxBytesPerPartition: 4_096 });
  });
});
