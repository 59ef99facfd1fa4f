import { Partitioners, type PartitionMetadata } from 'kafkajs';
import { seededRandom } from '@ampflow/testing';
import { keyHash, Murmur2Partitioner } from './partitioner';

const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_:.é€😀';

function randomKey(next: () => number): string | Buffer {
  const length = Math.floor(next() * 120);
  if (next() < 0.3) return Buffer.from(Array.from({ length }, () => Math.floor(next() * 256)));
  const chars = Array.from(alphabet);
  return Array.from({ length }, () => chars[Math.floor(next() * chars.length)]).join('');
}

function partitions(count: number, withoutLeader: number[] = []): PartitionMetadata[] {
  return Array.from({ length: count }, (_, partitionId) => ({
    partitionErrorCode: 0,
    partitionId,
    leader: withoutLeader.includes(partitionId) ? -1 : 1,
    replicas: [1],
    isr: [1],
  }));
}

describe('Murmur2Partitioner', () => {
  it("chooses kafkajs's partition for every key", () => {
    const { next } = seededRandom(20261206);
    const ours = Murmur2Partitioner();
    const theirs = Partitioners.DefaultPartitioner();
    for (let i = 0; i < 20_000; i++) {
      const key = randomKey(next);
      const partitionMetadata = partitions(1 + Math.floor(next() * 64));
      const args = { topic: 't', partitionMetadata, message: { key, value: null } };
      expect([i, ours(args)]).toEqual([i, theirs(args)]);
    }
  });

  it('hashes keys longer than its scratch buffer like short ones', () => {
    const theirs = Partitioners.DefaultPartitioner();
    const ours = Murmur2Partitioner();
    for (const key of ['x'.repeat(5_000), '€'.repeat(400), '😀'.repeat(300)]) {
      const args = { topic: 't', partitionMetadata: partitions(97), message: { key, value: null } };
      expect(ours(args)).toBe(theirs(args));
    }
    expect(keyHash('€'.repeat(400))).toBe(keyHash(Buffer.from('€'.repeat(400))));
  });

  it('keeps an explicit partition, and spreads keyless records over partitions with a leader', () => {
    const ours = Murmur2Partitioner();
    expect(ours({ topic: 't', partitionMetadata: partitions(6), message: { key: 'k', value: null, partition: 4 } })).toBe(4);
    const seen = new Set<number>();
    for (let i = 0; i < 60; i++) {
      seen.add(ours({ topic: 't', partitionMetadata: partitions(6, [1, 3]), message: { value: null } }));
    }
    expect([...seen].sort()).toEqual([0, 2, 4, 5]);
  });
});
