import { createHandover } from './handover';

describe('handover', () => {
  it("waits handoverMs from the first sight of a partition's signal, once per assignment", () => {
    let clock = 1_000;
    const handover = createHandover({ handoverMs: 17_000, now: () => clock });
    const first = new AbortController().signal;
    expect(handover.notBefore(first, 0)).toBe(18_000);
    clock = 5_000;
    // The same assignment: the same start, however late its next records come.
    expect(handover.notBefore(first, 0)).toBe(18_000);
    // A new assignment (a new signal) waits again, from its own first sight.
    expect(handover.notBefore(new AbortController().signal, 0)).toBe(22_000);
  });

  it('does not wait when this instance was the only member of the group at the assignment', () => {
    let clock = 1_000;
    let sole = true;
    const handover = createHandover({ handoverMs: 17_000, soleMember: () => sole, now: () => clock });
    const alone = new AbortController().signal;
    expect(handover.notBefore(alone, 0)).toBe(1_000);
    // Decided once per assignment: a member joining later changes nothing for the partitions this one kept.
    sole = false;
    clock = 2_000;
    expect(handover.notBefore(alone, 0)).toBe(1_000);
    // A partition given while another member is there waits for that member's attempts.
    expect(handover.notBefore(new AbortController().signal, 0)).toBe(19_000);
  });

  it('does not wait when the first record of an assignment was written after this instance joined the group', () => {
    let clock = 10_000;
    const handover = createHandover({ handoverMs: 17_000, joinedAt: () => 9_000, now: () => clock });
    // Written after the join: nothing was unread at the move, so no previous owner has anything in flight.
    const idle = new AbortController().signal;
    expect(handover.notBefore(idle, 9_500)).toBe(10_000);
    // Later records of the same assignment change nothing.
    clock = 11_000;
    expect(handover.notBefore(idle, 8_000)).toBe(10_000);
    // Written before the join: the previous owner may be sending it (or others) right now.
    expect(handover.notBefore(new AbortController().signal, 9_000)).toBe(28_000);
    // Before any join is known, always wait.
    const unknown = createHandover({ handoverMs: 17_000, joinedAt: () => 0, now: () => clock });
    expect(unknown.notBefore(new AbortController().signal, 50_000)).toBe(28_000);
  });

  it('checks the done marks only of records written before the partition was given to this instance', () => {
    let clock = 10_000;
    const handover = createHandover({ handoverMs: 3_000, now: () => clock });
    const signal = new AbortController().signal;
    expect(handover.mayBeReadBefore(9_000, signal)).toBe(true);
    expect(handover.mayBeReadBefore(10_000, signal)).toBe(true);
    clock = 20_000;
    expect(handover.mayBeReadBefore(10_001, signal)).toBe(false);
    // After a move back and forth (a new signal), the same record may have been read by the other owner.
    expect(handover.mayBeReadBefore(10_001, new AbortController().signal)).toBe(true);
  });
});
