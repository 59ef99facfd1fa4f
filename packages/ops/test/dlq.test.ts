import pino from 'pino';
import type { Kafka, KafkaMessage, Producer } from 'kafkajs';
import { deadLetterHeaders } from '@ampflow/kafka';
import { inspectDeadLetters, redriveDeadLetters, runCli, type InspectReport } from '@ampflow/ops';
import { ValidationError } from '@ampflow/runtime';
import {
  collectRecords,
  createTopics,
  rawTelematicaSocRecord,
  testEndpoints,
  testKafka,
  uniqueName,
  type RecordCollector,
} from '@ampflow/testing';

/** Dead letters made the way the consumer runner makes them, redriven to their source topic for real. */
jest.setTimeout(120_000);

const logger = pino({ level: process.env.AMPFLOW_TEST_LOG ?? 'silent' });

let kafka: Kafka;
let producer: Producer;
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  kafka = testKafka();
  producer = kafka.producer();
  await producer.connect();
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  await producer.disconnect();
});

/** A source topic and its `.dlq`, both new. */
async function topics() {
  const source = uniqueName('ops-source');
  const dlq = `${source}.dlq`;
  await createTopics(kafka, [source, dlq], 2);
  return { source, dlq };
}

/** Dead-letters a raw record with `code`, failed at `failedAt`, as if read at `source`/`partition`@`offset`. */
async function deadLetter(source: string, dlq: string, eventId: string, code: string, failedAt: string) {
  const raw = rawTelematicaSocRecord(eventId, `vehicle-${eventId}`);
  const message = { ...raw, offset: '17', timestamp: '0', attributes: 0, size: 0 } as unknown as KafkaMessage;
  const headers = deadLetterHeaders(
    { topic: source, partition: 1, message },
    new ValidationError(code, `cannot map ${eventId}`),
    new Date(failedAt),
  );
  await producer.send({ topic: dlq, messages: [{ key: raw.key, value: raw.value, headers }] });
  return raw;
}

async function collect(topic: string): Promise<RecordCollector> {
  const collector = await collectRecords(kafka, [topic]);
  cleanups.push(() => collector.stop());
  return collector;
}

describe('dlq inspect', () => {
  it('counts by error code with first and last failed-at, and samples through the CLI', async () => {
    const { source, dlq } = await topics();
    await deadLetter(source, dlq, 'a1', 'unmappable', '2026-05-01T10:00:00Z');
    await deadLetter(source, dlq, 'a2', 'bad_json', '2026-05-01T11:00:00Z');
    await deadLetter(source, dlq, 'a3', 'unmappable', '2026-05-01T12:00:00Z');

    const stdout: string[] = [];
    const stderr: string[] = [];
    const code = await runCli(['dlq', 'inspect', dlq, '--sample', '2', '--json'], {
      env: { KAFKA_BROKERS: testEndpoints().kafkaBrokers.join(','), LOG_LEVEL: 'silent' },
      stdout: { write: (s: string) => stdout.push(s) },
      stderr: { write: (s: string) => stderr.push(s) },
    });
    expect({ code, stderr: stderr.join('') }).toEqual({ code: 0, stderr: '' });
    const report = JSON.parse(stdout.join('')) as InspectReport;
    expect(report.summary).toEqual({
      total: 3,
      firstFailedAt: '2026-05-01T10:00:00.000Z',
      lastFailedAt: '2026-05-01T12:00:00.000Z',
      byCode: [
        {
          errorCode: 'unmappable',
          count: 2,
          firstFailedAt: '2026-05-01T10:00:00.000Z',
          lastFailedAt: '2026-05-01T12:00:00.000Z',
        },
        {
          errorCode: 'bad_json',
          count: 1,
          firstFailedAt: '2026-05-01T11:00:00.000Z',
          lastFailedAt: '2026-05-01T11:00:00.000Z',
        },
      ],
    });
    expect(report.sample).toHaveLength(2);
    expect(report.sample[0]).toMatchObject({ source: `${source}[1]@17`, errorCode: 'unmappable' });
  });

  it('inspecting moves no position: a redrive afterwards still takes everything', async () => {
    const { source, dlq } = await topics();
    await deadLetter(source, dlq, 'b1', 'unmappable', '2026-05-01T10:00:00Z');
    const groupId = uniqueName('redrive');
    const report = await inspectDeadLetters(kafka, { topic: dlq, sample: 0, groupId });
    expect(report.summary.total).toBe(1);
    const redrive = await redriveDeadLetters(kafka, {
      topic: dlq,
      filter: {},
      groupId,
      fromBeginning: false,
      dryRun: true,
      logger,
    });
    expect(redrive.matched).toBe(1);
  });

  it('fails with exit code 1 on a topic that does not exist, and 2 on a bad command line', async () => {
    const io = () => {
      const err: string[] = [];
      return {
        err,
        io: {
          env: { KAFKA_BROKERS: testEndpoints().kafkaBrokers.join(','), LOG_LEVEL: 'silent' },
          stdout: { write: () => true },
          stderr: { write: (s: string) => err.push(s) },
        },
      };
    };
    const missing = io();
    expect(await runCli(['dlq', 'inspect', uniqueName('no-such-topic')], missing.io)).toBe(1);
    expect(missing.err.join('')).toMatch(/unknown_topic: topic .* does not exist/);
    const usage = io();
    expect(await runCli(['dlq', 'redrive', 't.dlq', '--since', 'yesterday'], usage.io)).toBe(2);
    expect(usage.err.join('')).toMatch(/--since expects an ISO 8601 time/);
  });
});

describe('dlq redrive', () => {
  it('produces dead letters to their source topic with the original headers and redriven-at', async () => {
    const { source, dlq } = await topics();
    const raw = await deadLetter(source, dlq, 'c1', 'unmappable', '2026-05-01T10:00:00Z');
    await deadLetter(source, dlq, 'c2', 'bad_json', '2026-05-01T11:00:00Z');
    const out = await collect(source);
    const groupId = uniqueName('redrive');
    const now = new Date('2026-05-03T00:00:00.000Z');

    const report = await redriveDeadLetters(kafka, {
      topic: dlq,
      filter: { errorCode: 'unmappable' },
      groupId,
      fromBeginning: false,
      dryRun: false,
      logger,
      now: () => now,
    });
    expect(report).toEqual({
      topic: dlq,
      dryRun: false,
      read: 2,
      matched: 1,
      redriven: 1,
      skipped: 1,
      byTarget: { [source]: 1 },
    });
    const [record] = await out.waitFor(1);
    expect(record!.key).toBe(raw.key);
    expect(record!.value).toEqual(raw.value);
    expect(record!.headers).toEqual({ ...raw.headers, 'redriven-at': now.toISOString() });
  });

  it('remembers its position: a second redrive takes only dead letters that arrived since', async () => {
    const { source, dlq } = await topics();
    await deadLetter(source, dlq, 'd1', 'unmappable', '2026-05-01T10:00:00Z');
    await deadLetter(source, dlq, 'd2', 'unmappable', '2026-05-01T10:00:00Z');
    const out = await collect(source);
    const groupId = uniqueName('redrive');
    const redrive = (fromBeginning = false) =>
      redriveDeadLetters(kafka, { topic: dlq, filter: {}, groupId, fromBeginning, dryRun: false, logger });

    expect(await redrive()).toMatchObject({ read: 2, redriven: 2 });
    expect(await redrive()).toMatchObject({ read: 0, matched: 0, redriven: 0 });
    await deadLetter(source, dlq, 'd3', 'unmappable', '2026-05-01T10:00:00Z');
    expect(await redrive()).toMatchObject({ read: 1, redriven: 1 });
    await out.waitFor(3);
    expect(out.records.map((r) => r.headers['event-id']).sort()).toEqual(['d1', 'd2', 'd3']);

    // --from-beginning takes them all again, with the same event ids (downstream dedupes them).
    expect(await redrive(true)).toMatchObject({ read: 3, redriven: 3 });
    await out.waitFor(6);
    expect(out.records.map((r) => r.headers['event-id']).sort()).toEqual([
      'd1',
      'd1',
      'd2',
      'd2',
      'd3',
      'd3',
    ]);
  });

  it('filters by failed-at (since <= failed-at < until); a dry run produces nothing and keeps the position', async () => {
    const { source, dlq } = await topics();
    await deadLetter(source, dlq, 'e1', 'unmappable', '2026-05-01T10:00:00Z');
    await deadLetter(source, dlq, 'e2', 'unmappable', '2026-05-01T11:00:00Z');
    await deadLetter(source, dlq, 'e3', 'unmappable', '2026-05-01T12:00:00Z');
    const out = await collect(source);
    const groupId = uniqueName('redrive');
    const options = {
      topic: dlq,
      filter: { since: new Date('2026-05-01T11:00:00Z'), until: new Date('2026-05-01T12:00:00Z') },
      groupId,
      fromBeginning: false,
      logger,
    };

    expect(await redriveDeadLetters(kafka, { ...options, dryRun: true })).toMatchObject({
      read: 3,
      matched: 1,
      redriven: 0,
      skipped: 2,
    });
    expect(await redriveDeadLetters(kafka, { ...options, dryRun: false })).toMatchObject({
      read: 3,
      matched: 1,
      redriven: 1,
    });
    const [record] = await out.waitFor(1);
    expect(record!.headers['event-id']).toBe('e2');
  });
});
