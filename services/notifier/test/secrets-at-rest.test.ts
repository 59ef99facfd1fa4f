import type { Kafka } from 'kafkajs';
import { ensureTopics } from '@ampflow/kafka';
import { testKafka, uniqueName } from '@ampflow/testing';
import { NOTIFIER_ENDPOINTS_TOPIC } from '../src/app';
import { createEndpointCodec } from '../src/endpoints/endpoint-codec';
import { createEndpointSchema, newEndpoint, parseOrThrow, generateEndpointId } from '../src/endpoints/model';
import { createSecretBox, generateSecretsKey } from '../src/endpoints/secret-box';
import { SECRETS_KEY, startNotifier, type Json, type NotifierUnderTest } from './harness';

/**
 * Endpoint signing secrets at rest: whoever can read the endpoints topic, without NOTIFIER_SECRETS_KEY, must
 * not be able to sign webhooks as ampflow. Read with a plain kafkajs consumer, as such a reader would.
 */
jest.setTimeout(90_000);

let running: NotifierUnderTest[] = [];
afterEach(async () => {
  for (const notifier of running) await notifier.stop();
  running = [];
});

/** Every record of `topic` up to its current end, read from the beginning by a consumer of no ampflow code. */
async function readRawTopic(
  kafka: Kafka,
  topic: string,
): Promise<Array<{ key: string; value: string | null }>> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map<number, number>();
  try {
    for (const { partition, high } of await admin.fetchTopicOffsets(topic)) ends.set(partition, Number(high));
  } finally {
    await admin.disconnect();
  }
  const records: Array<{ key: string; value: string | null }> = [];
  const consumer = kafka.consumer({ groupId: uniqueName('raw-reader'), maxWaitTimeInMs: 100 });
  await consumer.connect();
  try {
    const read = new Map<number, number>();
    const done = new Promise<void>((resolve) => {
      const check = () => {
        if ([...ends].every(([partition, end]) => (read.get(partition) ?? 0) >= end)) resolve();
      };
      check();
      void consumer.subscribe({ topic, fromBeginning: true }).then(() =>
        consumer.run({
          eachMessage: async ({ partition, message }) => {
            records.push({
              key: message.key!.toString('utf8'),
              value: message.value?.toString('utf8') ?? null,
            });
            read.set(partition, Number(message.offset) + 1);
            check();
          },
        }),
      );
    });
    await done;
  } finally {
    await consumer.disconnect();
  }
  return records;
}

/** The base64 after `whsec_`: what signs. */
const keyPart = (secret: string) => secret.slice('whsec_'.length);

describe('endpoint secrets at rest', () => {
  it('no record of the endpoints topic holds a secret, created, given, rotated or previous', async () => {
    const notifier = await startNotifier();
    running.push(notifier);
    const given = `whsec_${Buffer.alloc(32, 0x5a).toString('base64')}`;
    const created = await notifier.admin('POST', '/v1/endpoints', { url: 'https://a.example.com/hook' });
    const withGiven = await notifier.admin('POST', '/v1/endpoints', {
      url: 'https://b.example.com/hook',
      secret: given,
    });
    expect([created.status, withGiven.status]).toEqual([201, 201]);
    const rotated = await notifier.admin('POST', `/v1/endpoints/${created.body.id as string}/secret/rotate`);
    expect(rotated.status).toBe(200);
    const current = (await notifier.admin('GET', `/v1/endpoints/${created.body.id as string}/secret`)).body;
    // The notifier itself still has them in memory, read back through its key.
    expect(current.secret).toBe(rotated.body.secret);
    const secrets: string[] = [created.body.secret, given, current.secret];
    expect(new Set(secrets).size).toBe(3);
    for (const secret of secrets) expect(secret).toMatch(/^whsec_/);

    const records = await readRawTopic(testKafka(), notifier.prefix + NOTIFIER_ENDPOINTS_TOPIC);
    // Two creations and one rotation (not yet compacted away): every version of every endpoint.
    expect(records.map((r) => r.key).sort()).toEqual(
      [created.body.id, created.body.id, withGiven.body.id].sort(),
    );
    for (const record of records) {
      expect(record.value).not.toContain('whsec_');
      for (const secret of secrets) expect(record.value).not.toContain(keyPart(secret));
      expect(JSON.parse(record.value!).sealedSecrets.kid).toBe(SECRETS_KEY.kid);
    }
  });

  it('at start, re-encrypts plain-text records from before and previous-key records with the current key', async () => {
    const kafka = testKafka();
    const prefix = `${uniqueName('nt')}.`;
    const topic = prefix + NOTIFIER_ENDPOINTS_TOPIC;
    await ensureTopics(kafka, [
      { topic, numPartitions: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] },
    ]);
    const old = generateSecretsKey('old');
    const endpointFrom = (url: string) =>
      newEndpoint(parseOrThrow(createEndpointSchema, { url }), generateEndpointId(), Date.now());
    const plain = endpointFrom('https://plain.example.com/hook');
    const sealedWithOld = endpointFrom('https://old.example.com/hook');
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic,
      messages: [
        // As the notifier wrote endpoints before their secrets were encrypted.
        { key: plain.id, value: JSON.stringify(plain) },
        {
          key: sealedWithOld.id,
          value: createEndpointCodec(createSecretBox({ current: old })).encode(sealedWithOld),
        },
      ],
    });
    await producer.disconnect();

    const notifier = await startNotifier(
      { secretsKeys: { current: SECRETS_KEY, previous: old } },
      { prefix },
    );
    running.push(notifier);
    const listed = (await notifier.admin('GET', '/v1/endpoints')).body.data as Json[];
    expect(listed.map((e: Json) => e.id).sort()).toEqual([plain.id, sealedWithOld.id].sort());
    for (const endpoint of [plain, sealedWithOld]) {
      const secret = await notifier.admin('GET', `/v1/endpoints/${endpoint.id}/secret`);
      expect(secret.body.secret).toBe(endpoint.secrets.current);
    }

    // The latest record of each is sealed with the current key, so the old key can be dropped.
    const latest = new Map<string, string>();
    for (const record of await readRawTopic(kafka, topic)) latest.set(record.key, record.value!);
    expect(latest.size).toBe(2);
    const withCurrentOnly = createEndpointCodec(createSecretBox({ current: SECRETS_KEY }));
    for (const endpoint of [plain, sealedWithOld]) {
      const value = latest.get(endpoint.id)!;
      expect(value).not.toContain(keyPart(endpoint.secrets.current));
      expect(JSON.parse(value).sealedSecrets.kid).toBe(SECRETS_KEY.kid);
      expect(withCurrentOnly.decode(Buffer.from(value))).toEqual(endpoint);
    }
  });
});
