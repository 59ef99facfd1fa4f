import { Writable } from 'node:stream';
import { createLogger } from './logger';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      cb();
    },
  });
  return { lines, destination };
}

describe('createLogger', () => {
  it('writes JSON with the service name and a textual level', () => {
    const { lines, destination } = capture();
    createLogger({ service: 'ingress', level: 'info', destination }).info({ topic: 't' }, 'hello');
    expect(lines[0]).toMatchObject({ service: 'ingress', level: 'info', topic: 't', msg: 'hello' });
  });

  it('redacts VINs, precise locations, secrets and signatures', () => {
    const { lines, destination } = capture();
    const logger = createLogger({ service: 's', level: 'info', destination });
    logger.info({
      vehicle: { vin: '7SAWDDEQXPS685253', make: 'Tesla' },
      location: { latitude: 12.3, longitude: 7.3 },
      endpoint: { secret: 'whsec_abc' },
      req: { headers: { 'sc-signature': 'deadbeef', authorization: 'Bearer x' } },
    });
    const text = JSON.stringify(lines[0]);
    for (const leaked of ['7SAWDDEQXPS685253', '12.3', 'whsec_abc', 'deadbeef', 'Bearer x']) {
      expect(text).not.toContain(leaked);
    }
    expect(text).toContain('Tesla');
  });
});
