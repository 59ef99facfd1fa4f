import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { Kafka, logLevel } from 'kafkajs';
import { Topics, emptyTelemetry, type VehicleTelemetry } from '@ampflow/contracts';
import { registerCanonicalSchema } from '@ampflow/kafka';
import { collectRecords, createTopics, startFaultStack, uniqueName, type FaultStack } from '../src';

// Each start of the dedicated JVMs takes 10-20 s on two cores; a whole-stack restart twice that.
const START_TIMEOUT_MS = 240_000;
const STEP_TIMEOUT_MS = 300_000;

/**
 * Records in Kafka carry the registry's schema id (Confluent wire format), so the registry must give the
 * same ids back after it restarts, and Kafka must keep the records; otherwise every old record is undecodable.
 */
describe('schema ids and records survive restarts of the registry and of the whole stack', () => {
  const topic = Topics.vehicleTelemetry;
  let stack: FaultStack | undefined;
  let schemaId: number;
  const sent: VehicleTelemetry[] = Array.from({ length: 5 }, (_, i) => ({
    ...emptyTelemetry({
      eventId: `durability-${i}`,
      provider: 'smartcar',
      vehicleId: 'smartcar:vehicle-1',
      providerVehicleId: 'vehicle-1',
      userId: null,
      occurredAt: 1_767_000_000_000 + i * 1_000,
      receivedAt: 1_767_000_000_500 + i * 1_000,
      sourceEventType: 'VEHICLE_STATE',
    }),
    isCharging: true,
    stateOfChargePercent: 40 + i,
  }));

  const kafkaOf = (s: FaultStack) =>
    new Kafka({
      clientId: uniqueName('durability'),
      brokers: s.kafkaBrokers,
      logLevel: logLevel.NOTHING,
      retry: { retries: 10, initialRetryTime: 200 },
    });

  /** Reads the topic from the beginning and decodes every record with a registry client that has no cache. */
  async function readBackAndDecode(s: FaultStack): Promise<VehicleTelemetry[]> {
    const collector = await collectRecords(kafkaOf(s), [topic]);
    try {
      const records = await collector.waitFor(sent.length, 60_000);
      const registry = new SchemaRegistry({ host: s.schemaRegistryUrl });
      const decoded: VehicleTelemetry[] = [];
      for (const record of records) decoded.push(await registry.decode(record.value!));
      return decoded;
    } finally {
      await collector.stop();
    }
  }

  beforeAll(async () => {
    stack = await startFaultStack();
  }, START_TIMEOUT_MS);

  afterAll(async () => {
    await stack?.stop();
  }, START_TIMEOUT_MS);

  it(
    'registers the canonical schema and writes Avro records in Confluent wire format',
    async () => {
      const s = stack!;
      const registry = new SchemaRegistry({ host: s.schemaRegistryUrl });
      schemaId = await registerCanonicalSchema(registry, s.schemaRegistryUrl, topic, topic);
      const kafka = kafkaOf(s);
      await createTopics(kafka, [topic], 1);
      const producer = kafka.producer({ idempotent: true });
      await producer.connect();
      try {
        await producer.send({
          topic,
          acks: -1,
          messages: await Promise.all(
            sent.map(async (t) => ({ key: t.vehicleId, value: await registry.encode(schemaId, t) })),
          ),
        });
      } finally {
        await producer.disconnect();
      }
      expect(await readBackAndDecode(s)).toEqual(sent);
    },
    STEP_TIMEOUT_MS,
  );

  it(
    'after a SIGKILL and restart of the registry, a new client decodes every old record',
    async () => {
      const s = stack!;
      await s.killRegistry('SIGKILL');
      await s.startRegistry();
      expect(await readBackAndDecode(s)).toEqual(sent);
      // Registering the same schema again answers the same id, so producers keep writing what consumers know.
      const registry = new SchemaRegistry({ host: s.schemaRegistryUrl });
      expect(await registerCanonicalSchema(registry, s.schemaRegistryUrl, topic, topic)).toBe(schemaId);
    },
    STEP_TIMEOUT_MS,
  );

  it(
    'after stack.sh down and up, the records are still in Kafka and still decode',
    async () => {
      const s = stack!;
      await s.restartAll();
      expect(await readBackAndDecode(s)).toEqual(sent);
      const registry = new SchemaRegistry({ host: s.schemaRegistryUrl });
      expect(await registerCanonicalSchema(registry, s.schemaRegistryUrl, topic, topic)).toBe(schemaId);
    },
    STEP_TIMEOUT_MS,
  );
});
