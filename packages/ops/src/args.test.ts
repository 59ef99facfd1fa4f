import { DEFAULT_NORMALIZER_GROUP_ID, UsageError, parseCommand } from './args';

describe('ops arguments', () => {
  it('asks for help with no arguments, help or --help', () => {
    expect(parseCommand([])).toEqual({ name: 'help' });
    expect(parseCommand(['help'])).toEqual({ name: 'help' });
    expect(parseCommand(['dlq', '--help'])).toEqual({ name: 'help' });
  });

  it('parses dlq inspect with a default sample of 5', () => {
    expect(parseCommand(['dlq', 'inspect', 'ev.raw.smartcar.v1.dlq'])).toEqual({
      name: 'dlq-inspect',
      topic: 'ev.raw.smartcar.v1.dlq',
      sample: 5,
      json: false,
    });
    expect(parseCommand(['dlq', 'inspect', 't.dlq', '--sample', '0', '--json'])).toMatchObject({
      sample: 0,
      json: true,
    });
  });

  it('parses dlq redrive with its filters', () => {
    expect(
      parseCommand([
        'dlq',
        'redrive',
        't.dlq',
        '--error-code',
        'unmappable',
        '--since',
        '2026-05-01T00:00:00Z',
        '--until',
        '2026-05-02',
        '--dry-run',
      ]),
    ).toEqual({
      name: 'dlq-redrive',
      topic: 't.dlq',
      errorCode: 'unmappable',
      since: new Date('2026-05-01T00:00:00Z'),
      until: new Date('2026-05-02T00:00:00Z'),
      fromBeginning: false,
      dryRun: true,
      json: false,
    });
  });

  it('parses reprocess with the normalizer group by default', () => {
    expect(parseCommand(['reprocess', '--since', '2026-05-01T00:00:00+02:00'])).toEqual({
      name: 'reprocess',
      since: new Date('2026-04-30T22:00:00Z'),
      group: DEFAULT_NORMALIZER_GROUP_ID,
      execute: false,
      redeliver: false,
      json: false,
    });
    expect(parseCommand(['reprocess', '--since', '2026-05-01', '--group', 'g', '--execute'])).toMatchObject({
      group: 'g',
      execute: true,
    });
    expect(parseCommand(['reprocess', '--since', '2026-05-01', '--execute', '--redeliver'])).toMatchObject({
      execute: true,
      redeliver: true,
    });
  });

  it.each([
    [['nope']],
    [['dlq', 'inspect']],
    [['dlq', 'inspect', 'a', 'b']],
    [['dlq', 'inspect', 't', '--sample', '-1']],
    [['dlq', 'inspect', 't', '--execute']],
    [['dlq', 'redrive', 't', '--redeliver']],
    [['dlq', 'redrive', 't', '--since', 'yesterday']],
    [['dlq', 'redrive', 't', '--since', '1714521600']],
    [['dlq', 'redrive', 't', '--since', '2026-05-02T00:00:00Z', '--until', '2026-05-01T00:00:00Z']],
    [['dlq', 'redrive', 't', '--bogus']],
    [['reprocess']],
    [['reprocess', 'extra', '--since', '2026-05-01']],
    [['reprocess', '--since', '2026-05-01', '--dry-run']],
  ])('refuses %j as a usage error', (argv) => {
    expect(() => parseCommand(argv)).toThrow(UsageError);
  });
});
