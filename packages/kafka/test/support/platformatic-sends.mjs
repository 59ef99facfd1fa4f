// A child process of producer-faults.test.ts (Jest cannot load @platformatic/kafka, an ES module): with one
// idempotent @platformatic/kafka producer, sends `first` to <good> together with a record too large for <small> in
// one send, then `second` and `third` to <good>, each on its own. Prints one JSON line: what each send answered.
//
//   node platformatic-sends.mjs <brokers,comma-separated> <good topic> <small topic> <size of the large record>
import { Buffer } from 'node:buffer';
import process from 'node:process';
import { Producer, ProduceAcks } from '@platformatic/kafka';

const [brokers, good, small, size] = process.argv.slice(2);
const producer = new Producer({
  clientId: 'producer-faults-platformatic',
  bootstrapBrokers: brokers.split(','),
  idempotent: true,
});

/** The innermost errors of a (nested) AggregateError, on one line. */
function leafErrors(error) {
  const leaves = [];
  const walk = (e) =>
    Array.isArray(e?.errors) && e.errors.length > 0 ? e.errors.forEach(walk) : leaves.push(e);
  walk(error);
  return leaves.map((e) => `${e?.apiId ?? e?.code ?? ''}: ${e?.message ?? e}`).join(' | ');
}

async function send(messages) {
  try {
    await producer.send({ acks: ProduceAcks.ALL, messages });
    return { acknowledged: true };
  } catch (error) {
    return { acknowledged: false, error: leafErrors(error) };
  }
}

const result = {
  first: await send([
    { topic: good, value: Buffer.from('first') },
    { topic: small, value: Buffer.from('x'.repeat(Number(size))) },
  ]),
  second: await send([{ topic: good, value: Buffer.from('second') }]),
  third: await send([{ topic: good, value: Buffer.from('third') }]),
};
await producer.close();
process.stdout.write(`${JSON.stringify(result)}\n`);
