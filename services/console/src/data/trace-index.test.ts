import { createTraceIndex, type IndexedRecord } from './trace-index';

let offset = 0;
function aRecord(overrides: Partial<IndexedRecord> = {}): IndexedRecord {
  return {
    topic: 'ev.vehicle-telemetry.v1',
    stream: 'ev.vehicle-telemetry.v1',
    partition: 0,
    offset: String(offset++),
    timestampMs: 1_000,
    key: 'smartcar:v1',
    headers: {},
    kind: 'canonical',
    traceId: `smartcar:e${offset}`,
    vehicleIds: ['smartcar:v1'],
    value: {},
    approxBytes: 100,
    ...overrides,
  };
}

describe('trace index', () => {
  it('finds the records of one provider event and the newest events of a vehicle', () => {
    const index = createTraceIndex({ maxEvents: 100, maxAgeMs: 60_000 });
    index.add(aRecord({ kind: 'raw', stream: 'ev.raw.smartcar.v1', traceId: 'smartcar:a', vehicleIds: [] }));
    index.add(aRecord({ traceId: 'smartcar:a' }));
    index.add(aRecord({ traceId: 'smartcar:b' }));
    index.add(aRecord({ traceId: 'smartcar:c', vehicleIds: ['smartcar:v2'] }));
    expect(index.byTraceId('smartcar:a').map((r) => r.kind)).toEqual(['raw', 'canonical']);
    expect(index.traceIdsOfVehicle('smartcar:v1', 10)).toEqual(['smartcar:b', 'smartcar:a']);
    expect(index.traceIdsOfVehicle('smartcar:v1', 1)).toEqual(['smartcar:b']);
    expect(index.recordsOfVehicle('smartcar:v2', 'ev.vehicle-telemetry.v1')).toHaveLength(1);
    expect(index.recordsOfVehicle('smartcar:v2', 'ev.charging-sessions.v1')).toHaveLength(0);
  });

  it('keeps one copy of a record read twice (same topic, partition and offset)', () => {
    const index = createTraceIndex({ maxEvents: 100, maxAgeMs: 60_000 });
    const record = aRecord({ traceId: 'smartcar:a' });
    expect(index.add(record)).toBe(true);
    expect(index.add({ ...record })).toBe(false);
    expect(index.byTraceId('smartcar:a')).toHaveLength(1);
    expect(index.size()).toBe(1);
  });

  it('holds at most maxEvents records, dropping the oldest from every look-up', () => {
    const evictions: string[] = [];
    const index = createTraceIndex({ maxEvents: 3, maxAgeMs: 60_000, onEvict: (r) => evictions.push(r) });
    for (const id of ['a', 'b', 'c', 'd', 'e']) index.add(aRecord({ traceId: `smartcar:${id}` }));
    expect(index.size()).toBe(3);
    expect(evictions).toEqual(['count', 'count']);
    expect(index.byTraceId('smartcar:a')).toEqual([]);
    expect(index.byTraceId('smartcar:b')).toEqual([]);
    expect(index.traceIdsOfVehicle('smartcar:v1', 10)).toEqual(['smartcar:e', 'smartcar:d', 'smartcar:c']);
    expect(index.recordsOfVehicle('smartcar:v1', 'ev.vehicle-telemetry.v1')).toHaveLength(3);
  });

  it('drops records older than maxAgeMs, and a vehicle with none left disappears', () => {
    const evictions: string[] = [];
    const index = createTraceIndex({ maxEvents: 100, maxAgeMs: 1_000, onEvict: (r) => evictions.push(r) });
    index.add(aRecord({ traceId: 'smartcar:old', timestampMs: 10_000, vehicleIds: ['smartcar:gone'] }));
    index.add(aRecord({ traceId: 'smartcar:new', timestampMs: 10_600 }));
    expect(index.oldestTimestampMs()).toBe(10_000);
    expect(index.evictExpired(11_000)).toBe(0);
    expect(index.evictExpired(11_001)).toBe(1);
    expect(evictions).toEqual(['age']);
    expect(index.traceIdsOfVehicle('smartcar:gone', 10)).toEqual([]);
    expect(index.byTraceId('smartcar:new')).toHaveLength(1);
    expect(index.oldestTimestampMs()).toBe(10_600);
  });

  it('stays consistent over many evictions (the queue compacts without losing order)', () => {
    const index = createTraceIndex({ maxEvents: 10, maxAgeMs: 60_000 });
    for (let i = 0; i < 5_000; i++) index.add(aRecord({ traceId: `smartcar:${i}` }));
    expect(index.size()).toBe(10);
    expect(index.traceIdsOfVehicle('smartcar:v1', 3)).toEqual([
      'smartcar:4999',
      'smartcar:4998',
      'smartcar:4997',
    ]);
    expect(index.byTraceId('smartcar:4990')).toHaveLength(1);
    expect(index.byTraceId('smartcar:4989')).toHaveLength(0);
  });
});

describe('trace index order', () => {
  it('orders a vehicle by when each event was first seen, whatever order the topics were read in', () => {
    const index = createTraceIndex({ maxEvents: 100, maxAgeMs: 60_000 });
    index.add(aRecord({ traceId: 'smartcar:late', timestampMs: 3_000 }));
    index.add(aRecord({ traceId: 'smartcar:early', timestampMs: 2_000 }));
    // The raw record of "early" read last, with the oldest timestamp (the ingress wrote it first).
    index.add(aRecord({ kind: 'raw', traceId: 'smartcar:early', timestampMs: 1_000 }));
    index.add(aRecord({ traceId: 'smartcar:tie-a', timestampMs: 5_000 }));
    index.add(aRecord({ traceId: 'smartcar:tie-b', timestampMs: 5_000 }));
    expect(index.traceIdsOfVehicle('smartcar:v1', 10)).toEqual([
      'smartcar:tie-b',
      'smartcar:tie-a',
      'smartcar:late',
      'smartcar:early',
    ]);
  });
});

describe('trace index byte budget', () => {
  it('drops the oldest records while the estimated bytes exceed maxBytes, never the one just added', () => {
    const evictions: string[] = [];
    const index = createTraceIndex({
      maxEvents: 100,
      maxAgeMs: 60_000,
      maxBytes: 1_000,
      onEvict: (r) => evictions.push(r),
    });
    for (const id of ['a', 'b', 'c']) index.add(aRecord({ traceId: `smartcar:${id}`, approxBytes: 400 }));
    expect(index.bytes()).toBe(800);
    expect(evictions).toEqual(['bytes']);
    expect(index.byTraceId('smartcar:a')).toEqual([]);
    index.add(aRecord({ traceId: 'smartcar:huge', approxBytes: 5_000 }));
    expect(index.size()).toBe(1);
    expect(index.bytes()).toBe(5_000);
  });
});
