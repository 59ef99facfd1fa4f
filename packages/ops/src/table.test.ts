import { formatTable } from './table';

describe('formatTable', () => {
  it('pads columns, right-aligns numbers and prints missing cells as -', () => {
    expect(
      formatTable(
        ['code', 'count', 'note'],
        [
          ['bad_json', 2, null],
          ['unmappable', 10, 'x'],
        ],
      ),
    ).toBe(
      [
        'code        count  note',
        '----------  -----  ----',
        'bad_json        2  -',
        'unmappable     10  x',
      ].join('\n'),
    );
  });
});
