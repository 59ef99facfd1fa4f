import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import pino from 'pino';
import { Topics, type ChargingSession } from '@ampflow/contracts';
import { collectRecords, testEndpoints, uniqueName } from '@ampflow/testing';
import { createInProcessPipeline, postSeedScenario } from './pipeline';

const logger = pino({ level: 'silent' });
const AMT = 'e2e-sessions-token';
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

it("the seeds' charging scenario posted to the ingress ends in STARTED and ENDED sessions for both providers", async () => {
  const pipeline = createInProcessPipeline({
    prefix: uniqueName('e2e'),
    managementToken: AMT,
    telematicaSecret: SECRET,
    logger,
  });
  const { schemaRegistryUrl } = testEndpoints();
  await pipeline.start();
  const out = await collectRecords(pipeline.kafka, [pipeline.topicName(Topics.chargingSessions)]);
  try {
    expect(await postSeedScenario(pipeline)).toEqual([200, 200, 200, 200]);

    await out.waitFor(4, 30_000);
    await new Promise((r) => setTimeout(r, 500));
    const registry = new SchemaRegistry({ host: schemaRegistryUrl });
    const sessions = (await Promise.all(
      out.records.map((r) => registry.decode(r.value!)),
    )) as ChargingSession[];
    const view = sessions
      .map((s) => [
        s.vehicleId,
        s.change,
        s.endReason,
        s.startedAt,
        s.endedAt,
        s.socStartPercent,
        s.socEndPercent,
      ])
      .sort(
        (a, b) =>
          String(a[0]).localeCompare(String(b[0])) || Number(a[1] === 'ENDED') - Number(b[1] === 'ENDED'),
      );
    expect(view).toEqual([
      ['smartcar:829e30ab-5a13-40b5-9f8a-8538af86ed95', 'STARTED', null, 1754365413366, null, null, null],
      [
        'smartcar:829e30ab-5a13-40b5-9f8a-8538af86ed95',
        'ENDED',
        'FULLY_CHARGED',
        1754365413366,
        1754369013366,
        null,
        80,
      ],
      [
        'telematica:641aeef260d202219c22f03b',
        'STARTED',
        null,
        Date.parse('2023-06-29T11:29:11.815Z'),
        null,
        77,
        77,
      ],
      [
        'telematica:641aeef260d202219c22f03b',
        'ENDED',
        'UNPLUGGED',
        Date.parse('2023-06-29T11:29:11.815Z'),
        Date.parse('2023-06-29T12:41:11.815Z'),
        77,
        81,
      ],
    ]);
    expect(new Set(sessions.map((s) => s.sessionId)).size).toBe(2);
  } finally {
    await out.stop();
    await pipeline.stop();
  }
});
