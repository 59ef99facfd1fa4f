import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Topics } from '@ampflow/contracts';
import { createReliableProducer, ensureTopics } from '@ampflow/kafka';
import {
  collectRecords,
  eventually,
  rawTelematicaSocRecord,
  repoRoot,
  testEndpoints,
  testKafka,
  uniqueName,
} from '@ampflow/testing';

/**
 * Issue 8, fault 5: a consumer SIGKILLed and replaced, several times in a row. The replacement waits for the
 * dead member's session to expire (10 s, `sessionTimeoutMs`) and takes its partitions; nothing is lost and the
 * group never stays stuck. Runs the built service as `node` runs it in production.
 */
jest.setTimeout(300_000);

function startNormalizer(groupId: string, topicPrefix: string) {
  const { kafkaBrokers, schemaRegistryUrl } = testEndpoints();
  const child = spawn(process.execPath, [join(repoRoot(), 'services', 'normalizer', 'dist', 'main.js')], {
    env: {
      PATH: process.env.PATH ?? '',
      LOG_LEVEL: 'warn',
      HTTP_PORT: '0',
      KAFKA_BROKERS: kafkaBrokers.join(','),
      SCHEMA_REGISTRY_URL: schemaRegistryUrl,
      NORMALIZER_GROUP_ID: groupId,
      KAFKA_TOPIC_PREFIX: topicPrefix,
    },
    stdio: 'ignore',
  });
  return child;
}

it('replaces a SIGKILLed normalizer three times in a row without losing a record', async () => {
  const kafka = testKafka();
  // Topics of its own (KAFKA_TOPIC_PREFIX): never the platform's, never other runs' records.
  const prefix = `${uniqueName('kill')}.`;
  const rawTopic = prefix + Topics.rawTelematica;
  await ensureTopics(kafka, [
    { topic: rawTopic, numPartitions: 6 },
    { topic: prefix + Topics.vehicleTelemetry, numPartitions: 6 },
  ]);
  const groupId = uniqueName('kill-normalizer');
  const run = uniqueName('kill');
  const producer = createReliableProducer(kafka);
  await producer.connect();
  const out = await collectRecords(kafka, [prefix + Topics.vehicleTelemetry]);
  const fed: string[] = [];
  const outAt = new Map<string, number>();
  const mine = () =>
    out.records
      .filter((r) => r.headers['event-id']?.startsWith(`telematica:${run}-`))
      .map((r) => r.headers['event-id']!);
  let feeding = true;
  const feeder = (async () => {
    for (let i = 0; feeding; i++) {
      const id = `${run}-${i}`;
      await producer.send(rawTopic, [rawTelematicaSocRecord(id, `vehicle-${i % 12}`)]);
      fed.push(`telematica:${id}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  const children = [startNormalizer(groupId, prefix)];
  const recoveries: number[] = [];
  try {
    await eventually(() => mine().length > 20, 'the first normalizer to work', 60_000, 100);
    for (let kill = 0; kill < 3; kill++) {
      children.at(-1)!.kill('SIGKILL');
      const killedAt = Date.now();
      const fedAtKill = fed.length;
      children.push(startNormalizer(groupId, prefix));
      // Recovered once a record fed after the kill comes out.
      await eventually(
        () => {
          const seen = new Set(mine());
          return fed.slice(fedAtKill).some((id) => seen.has(id));
        },
        `records to flow again after kill ${kill + 1}`,
        120_000,
        100,
      );
      recoveries.push(Date.now() - killedAt);
      for (const id of mine()) if (!outAt.has(id)) outAt.set(id, Date.now());
    }
    feeding = false;
    await feeder;
    await eventually(
      () => {
        const seen = new Set(mine());
        return fed.every((id) => seen.has(id));
      },
      'every fed record on the canonical topic',
      60_000,
      200,
    ).catch(() => undefined);
    const seen = new Set(mine());
    const missing = fed.filter((id) => !seen.has(id));
    process.stderr.write(
      `[process-kill] ${fed.length} records fed, ${missing.length} missing, ` +
        `${mine().length - seen.size} duplicates; recovery after each SIGKILL: ${recoveries.join(', ')} ms\n`,
    );
    expect({ fed: fed.length > 0, missing }).toEqual({ fed: true, missing: [] });
    expect(recoveries).toHaveLength(3);
  } finally {
    feeding = false;
    for (const child of children) child.kill('SIGKILL');
    await out.stop();
    await producer.disconnect();
  }
});
